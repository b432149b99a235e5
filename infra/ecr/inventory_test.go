package ecr_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func manifest(n int) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:%064d"}}`, n)
}

// seed pushes tags t0..t(n-1), an hour apart, and marks the listed ones verified.
func seed(t *testing.T, d *awsdouble.Double, n int, verified ...int) map[string]string {
	t.Helper()
	if err := d.CreateRepository("drill", true, nil); err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for i := range n {
		tag := fmt.Sprint("t", i)
		dg, err := d.PushImage("drill", tag, manifest(i), epoch.Add(time.Duration(i)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		digests[tag] = dg
		if slices.Contains(verified, i) {
			if _, err := d.PushImage("drill", "verified-"+tag, manifest(i), epoch); err != nil {
				t.Fatal(err)
			}
		}
	}
	return digests
}

func TestInventory(t *testing.T) {
	d := newDouble(t, awsdouble.Options{PageSize: 2, Throttle: 0.3, Seed: 3})
	digests := seed(t, d, 4, 1)
	repo := ecr.NewFromConfig(d.Config(), "drill")
	ctx := t.Context()

	recs, err := repo.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s %v %s", r.Tag, r.Verified, r.PushedAt.Format("15h")))
		if r.Digest != digests[r.Tag] {
			t.Errorf("%s digest %s, want %s", r.Tag, r.Digest, digests[r.Tag])
		}
	}
	if want := []string{"t3 false 03h", "t2 false 02h", "t1 true 01h", "t0 false 00h"}; !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q (newest first, marks folded in)", got, want)
	}

	for range 2 { // marking twice is a no-op
		if err := repo.MarkVerified(ctx, "t2"); err != nil {
			t.Fatal(err)
		}
	}
	recs, _ = repo.List(ctx)
	if !recs[1].Verified || recs[1].Tag != "t2" {
		t.Errorf("after MarkVerified: %+v", recs[1])
	}

	img, err := repo.Resolve(ctx, "t2")
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != digests["t2"] || !strings.HasSuffix(img.Ref, "/drill@"+digests["t2"]) || img.Version != "t2" {
		t.Errorf("Resolve = %+v", img)
	}
}

func TestInventoryOfARepositoryThatDoesNotExist(t *testing.T) {
	d := newDouble(t, awsdouble.Options{})
	repo := ecr.NewFromConfig(d.Config(), "nosuch")
	recs, err := repo.List(t.Context())
	if err != nil || len(recs) != 0 {
		t.Errorf("List = %v, %v; want an empty list (nothing pushed yet)", recs, err)
	}
	_, err = repo.Resolve(t.Context(), "v1")
	if !errors.Is(err, ecr.ErrRepositoryNotFound) ||
		!strings.Contains(err.Error(), "resolve v1 in repository nosuch (region eu-west-1): the repository does not exist") {
		t.Errorf("Resolve = %v, want it to say the repository does not exist", err)
	}
}

func TestInventoryErrorsSayWhatWhereAndWhyInWords(t *testing.T) {
	tests := []struct {
		name  string
		fault awsdouble.Fault
		want  string
	}{
		{"access denied", awsdouble.Fault{Op: "ecr:DescribeImages", Code: "AccessDeniedException", Message: "User: x is not authorized"},
			"list images in repository drill (region eu-west-1): access denied (AccessDeniedException): User: x is not authorized"},
		{"a code without words of its own", awsdouble.Fault{Op: "ecr:DescribeImages", Code: "KmsException", Message: "key disabled"},
			"list images in repository drill (region eu-west-1): kms (KmsException): key disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDouble(t, awsdouble.Options{})
			seed(t, d, 1)
			d.Inject(tt.fault)
			_, err := ecr.NewFromConfig(d.Config(), "drill").List(t.Context())
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
			if strings.Contains(fmt.Sprint(err), "https response error") {
				t.Errorf("err shows the SDK's text: %v", err)
			}
		})
	}
}

func TestInventoryErrors(t *testing.T) {
	tests := []struct {
		name string
		call func(*ecr.Repository, *awsdouble.Double) error
		want string
	}{
		{"resolving an unknown tag", func(r *ecr.Repository, _ *awsdouble.Double) error {
			_, err := r.Resolve(t.Context(), "nope")
			return err
		}, "no such tag"},
		{"verifying an unknown tag", func(r *ecr.Repository, _ *awsdouble.Double) error { return r.MarkVerified(t.Context(), "nope") }, "ImageNotFound"},
		{"verifying a verified mark", func(r *ecr.Repository, _ *awsdouble.Double) error { return r.MarkVerified(t.Context(), "verified-t0") }, "itself a verified mark"},
		{"a verified mark already on another digest", func(r *ecr.Repository, d *awsdouble.Double) error {
			if _, err := d.PushImage("drill", "verified-t0", manifest(1), epoch); err != nil {
				return err
			}
			return r.MarkVerified(t.Context(), "t0")
		}, "already marks another digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDouble(t, awsdouble.Options{})
			seed(t, d, 2)
			err := tt.call(ecr.NewFromConfig(d.Config(), "drill"), d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
