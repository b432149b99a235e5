package teardown_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

func (w *world) sweeper(out *bytes.Buffer) teardown.Sweeper {
	return teardown.Sweeper{Hosts: w.hosts, Repositories: []*ecr.Repository{w.repo}, Out: out, Progress: logWriter{w.t}}
}

// sweepUntilClean sweeps like a user re-running `sweep` after a non-zero exit, at most three times.
func (w *world) sweepUntilClean(sel runtag.Selector) (runs int, out string) {
	var buf bytes.Buffer
	for runs = 1; runs <= 3; runs++ {
		res, err := w.sweeper(&buf).Sweep(w.t.Context(), sel, false)
		if err == nil && len(res.Remaining) == 0 {
			return runs, buf.String()
		}
		w.t.Logf("sweep %d: %v; remaining %v", runs, err, res.Remaining)
	}
	return runs, buf.String()
}

func TestSweepAfterAKilledRun(t *testing.T) {
	t.Run("the dead-man's switch took the host; sweep removes the rest", func(t *testing.T) {
		w := newWorld(t, awsdouble.Options{})
		plan, err := w.provision(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.d.PowerOff(plan.Host.InstanceID); err != nil {
			t.Fatal(err)
		}
		w.d.Settle()
		var out bytes.Buffer
		res, err := w.sweeper(&out).Sweep(t.Context(), runtag.Selector{RunID: "r1"}, false)
		if err != nil || len(res.Remaining) != 0 {
			t.Fatalf("sweep: %v, remaining %v", err, res.Remaining)
		}
		for _, want := range []string{"removed security group " + plan.Host.SecurityGroupID, "removed key pair deploydrill-r1", "removed repository drill"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
		w.assertClean()
	})
	t.Run("the host is still running; sweep terminates it first", func(t *testing.T) {
		w := newWorld(t, awsdouble.Options{})
		plan, err := w.provision(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if runs, out := w.sweepUntilClean(runtag.Selector{}); runs != 1 || !strings.Contains(out, "removed instance "+plan.Host.InstanceID) {
			t.Errorf("took %d sweeps; output:\n%s", runs, out)
		}
		w.assertClean()
	})
}

func TestSweepAfterARunKilledAtEachStep(t *testing.T) {
	provisioning, _ := happyOps(t)
	for _, op := range provisioning {
		t.Run("killed after "+op, func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w.cancelAfter(op, cancel)
			if _, err := w.provision(ctx); err == nil {
				t.Fatal("provision survived the kill")
			}
			w.d.AfterOp = nil
			// No teardown: the runner is gone. An instance launched a moment ago may be invisible
			// to the first sweep's listing; that sweep then reports it as remaining.
			if runs, out := w.sweepUntilClean(runtag.Selector{RunID: "r1"}); runs > 3 {
				t.Errorf("not clean after 3 sweeps; output:\n%s", out)
			}
			w.assertClean()
		})
	}
}

func TestSweepSelects(t *testing.T) {
	w := newWorld(t, awsdouble.Options{})
	now := created.Add(3 * time.Hour)
	runs := map[string]time.Time{"old": created, "new": created.Add(2*time.Hour + 30*time.Minute)}
	for id, at := range runs {
		run := runtag.Run{ID: id, CreatedAt: at, Lifetime: time.Hour}
		if _, err := w.hosts.LaunchHost(t.Context(), ec2.HostSpec{Run: run}); err != nil {
			t.Fatal(err)
		}
	}
	// A persistent repository this tool created: it holds the inventory, so sweep keeps it.
	if _, err := w.repo.EnsureRepository(t.Context(), runtag.Run{ID: "old", CreatedAt: created, Lifetime: time.Hour}, false); err != nil {
		t.Fatal(err)
	}

	var dry bytes.Buffer
	res, err := w.sweeper(&dry).Sweep(t.Context(), runtag.Selector{}, true)
	// Two runs of an instance, its root volume, a group and a key pair each.
	if err != nil || len(res.Found) != 8 || len(res.Remaining) != 8 || strings.Count(dry.String(), "would remove ") != 8 {
		t.Fatalf("dry run: %v, found %v, output:\n%s", err, res.Found, dry.String())
	}
	if n := len(w.d.Leftovers(runtag.KeyCreatedBy, "")); n != 9 {
		t.Fatalf("a dry run removed something: %d left, want 9", n)
	}

	var out bytes.Buffer
	res, err = w.sweeper(&out).Sweep(t.Context(), runtag.Selector{OlderThan: 2 * time.Hour, Now: now}, false)
	if err != nil || len(res.Removed) != 4 || len(res.Remaining) != 0 {
		t.Fatalf("older than 2h: %v, %+v", err, res)
	}
	if left := w.d.Leftovers(runtag.KeyRunID, "old"); !slices.Equal(left, []string{"repository drill"}) {
		t.Errorf("old run left %v, want only its persistent repository", left)
	}
	if left := w.d.Leftovers(runtag.KeyRunID, "new"); len(left) != 4 {
		t.Errorf("the newer run lost resources: %v", left)
	}

	res, err = w.sweeper(&out).Sweep(t.Context(), runtag.Selector{Expired: true, Now: now}, false)
	if err != nil || len(res.Removed) != 0 {
		t.Errorf("nothing of the new run is expired yet: %v, %+v", err, res)
	}
	res, err = w.sweeper(&out).Sweep(t.Context(), runtag.Selector{Expired: true, Now: now.Add(time.Hour)}, false)
	if err != nil || len(res.Removed) != 4 {
		t.Errorf("an hour later the new run is expired: %v, %+v", err, res)
	}
}
