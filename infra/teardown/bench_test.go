package teardown_test

import (
	"testing"

	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// BenchmarkProvisionTeardown is one full cycle against the double (which, like AWS, keeps the
// instance pending and shutting-down for a few describes and the group in use for a few
// deletes): repository, credentials, host up to running, and teardown back to nothing.
func BenchmarkProvisionTeardown(b *testing.B) {
	for b.Loop() {
		w := newWorld(b, awsdouble.Options{})
		host, err := w.provision(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if err := w.teardown(b.Context(), host).Err(); err != nil {
			b.Fatal(err)
		}
		if left := w.d.Leftovers(runtag.KeyRunID, w.run.ID); len(left) > 0 {
			b.Fatalf("left %v", left)
		}
	}
}
