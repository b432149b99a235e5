package teardown_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// TestTeardownAppliesRetention covers a persistent repository (it existed before the run, so
// the run uses it as it is): teardown keeps V, K and the newest verified images, deletes the rest.
func TestTeardownAppliesRetention(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(d *awsdouble.Double, digests []string)
		wantErr  string
		wantTags []string
	}{
		{"everything but V, K and the newest verified goes", func(*awsdouble.Double, []string) {}, "",
			[]string{"t1", "t3", "t4", "verified-t1"}},
		{"a per-image failure is reported and the rest still goes", func(d *awsdouble.Double, digests []string) {
			_ = d.FailImageDelete("drill", digests[0], "ImageReferencedByManifestList")
		}, "ImageReferencedByManifestList", []string{"t0", "t1", "t3", "t4", "verified-t1"}},
		{"listing refused leaves the images alone", func(d *awsdouble.Double, _ []string) {
			d.Inject(awsdouble.Fault{Op: "ecr:DescribeImages", Code: "AccessDeniedException"})
		}, "AccessDeniedException", []string{"t0", "t1", "t2", "t3", "t4", "verified-t1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			if err := w.d.CreateRepository("drill", true, nil); err != nil {
				t.Fatal(err)
			}
			var digests []string
			for i := range 5 {
				m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","n":%d}`, i)
				dg, err := w.d.PushImage("drill", fmt.Sprint("t", i), m, created.Add(time.Duration(i)*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				digests = append(digests, dg)
			}
			plan, err := w.provision(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := w.repo.MarkVerified(t.Context(), "t1"); err != nil {
				t.Fatal(err)
			}
			plan.Retention = &ecr.Retention{Keep: []string{"t4", "t3"}, KeepVerified: 1}
			tt.damage(w.d, digests)
			err = w.teardown(t.Context(), plan)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("teardown: %v, want error %q", err, tt.wantErr)
			}
			repo, _ := w.d.Repository("drill")
			var tags []string
			for _, img := range repo.Images {
				tags = append(tags, img.Tags...)
			}
			slices.Sort(tags)
			if !slices.Equal(tags, tt.wantTags) {
				t.Errorf("left %v, want %v", tags, tt.wantTags)
			}
			w.assertClean() // the repository is not the run's: only the host's resources count
		})
	}
}
