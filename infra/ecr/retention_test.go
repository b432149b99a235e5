package ecr_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/retention"
)

func TestRetain(t *testing.T) {
	tests := []struct {
		name     string
		verified []int
		policy   retention.Policy
		want     []string // tags left, sorted
	}{
		{"V, K and the five newest verified survive", []int{0, 1, 2, 3, 4, 5, 6}, retention.Policy{Keep: []string{"t9", "t8"}, KeepVerified: 5},
			[]string{"t2", "t3", "t4", "t5", "t6", "t8", "t9", "verified-t2", "verified-t3", "verified-t4", "verified-t5", "verified-t6"}},
		{"an explicit count", []int{0, 1, 2}, retention.Policy{Keep: []string{"t9"}, KeepVerified: 1},
			[]string{"t2", "t9", "verified-t2"}},
		{"keep verified 0 keeps no verified image, as the local store does", []int{0, 1}, retention.Policy{Keep: []string{"t9", "t8"}},
			[]string{"t8", "t9"}},
		{"a kept tag that is also verified counts once", []int{9}, retention.Policy{Keep: []string{"t9"}, KeepVerified: 1},
			[]string{"t9", "verified-t9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDouble(t, awsdouble.Options{PageSize: 3})
			seed(t, d, 10, tt.verified...)
			res, err := ecr.NewFromConfig(d.Config(), "drill").Retain(t.Context(), tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			repo, _ := d.Repository("drill")
			var left []string
			for _, img := range repo.Images {
				left = append(left, img.Tags...)
			}
			slices.Sort(left)
			if !slices.Equal(left, tt.want) {
				t.Errorf("left %q, want %q", left, tt.want)
			}
			if len(res.Removed)+len(res.Kept) != 10 {
				t.Errorf("result %v does not account for all 10 images", res)
			}
		})
	}
}

func TestRetainReportsPerImageFailures(t *testing.T) {
	d := newDouble(t, awsdouble.Options{})
	digests := seed(t, d, 3)
	if err := d.FailImageDelete("drill", digests["t0"], "ImageReferencedByManifestList"); err != nil {
		t.Fatal(err)
	}
	res, err := ecr.NewFromConfig(d.Config(), "drill").Retain(t.Context(), retention.Policy{Keep: []string{"t2"}})
	if err == nil || !strings.Contains(err.Error(), "ImageReferencedByManifestList") || !strings.Contains(err.Error(), digests["t0"]) {
		t.Fatalf("err = %v, want the per-image failure with its digest", err)
	}
	if !slices.Equal(res.Removed, []string{digests["t1"]}) {
		t.Errorf("removed %v, want only t1 (the failure must not stop the others)", res.Removed)
	}
}

func TestRetainARepositoryThatDoesNotExist(t *testing.T) {
	d := newDouble(t, awsdouble.Options{})
	res, err := ecr.NewFromConfig(d.Config(), "nosuch").Retain(t.Context(), retention.Policy{KeepVerified: 5})
	if err != nil || len(res.Kept)+len(res.Removed) != 0 {
		t.Fatalf("Retain = %v, %v; want nothing to do", res, err)
	}
}
