package teardown_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

func (w *world) selector() runtag.Selector { return runtag.Selector{RunID: w.run.ID} }

// sweepUntilClean sweeps like a user re-running `sweep` after a non-zero exit, at most three
// times, and returns the labels of what the sweeps removed.
func (w *world) sweepUntilClean(sel runtag.Selector) (runs int, removed []string) {
	for runs = 1; runs <= 3; runs++ {
		res, err := w.plan().Sweep(w.t.Context(), sel, false)
		removed = append(removed, labels(res.Removed)...)
		if err == nil && len(res.Remaining) == 0 {
			return runs, removed
		}
		w.t.Logf("sweep %d: %v; remaining %v", runs, err, res.Remaining)
	}
	return runs, removed
}

func TestSweepAfterAKilledRun(t *testing.T) {
	t.Run("the dead-man's switch took the host; sweep removes the rest", func(t *testing.T) {
		w := newWorld(t, awsdouble.Options{})
		host, err := w.provision(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.d.PowerOff(host.InstanceID); err != nil {
			t.Fatal(err)
		}
		w.d.Settle()
		res, err := w.plan().Sweep(t.Context(), runtag.Selector{RunID: "r1"}, false)
		if err != nil || len(res.Remaining) != 0 {
			t.Fatalf("sweep: %v, remaining %v", err, res.Remaining)
		}
		want := []string{"security group " + host.SecurityGroupID, "key pair deploydrill-r1", "repository drill"}
		if got := labels(res.Removed); !slices.Equal(got, want) {
			t.Errorf("removed %v, want %v", got, want)
		}
		w.assertClean()
	})
	t.Run("the host is still running; sweep terminates it first", func(t *testing.T) {
		w := newWorld(t, awsdouble.Options{})
		host, err := w.provision(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if runs, removed := w.sweepUntilClean(runtag.Selector{}); runs != 1 || removed[0] != "instance "+host.InstanceID {
			t.Errorf("took %d sweeps; removed %v", runs, removed)
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
			if runs, removed := w.sweepUntilClean(runtag.Selector{RunID: "r1"}); runs > 3 {
				t.Errorf("not clean after 3 sweeps; removed %v", removed)
			}
			w.assertClean()
		})
	}
}

func TestSweepLeavesWhatTheToolDidNotTag(t *testing.T) {
	w := newWorld(t, awsdouble.Options{})
	if _, err := w.provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := w.d.ImportKeyPair("deploydrill-other", nil); err != nil { // a namesake, not ours
		t.Fatal(err)
	}
	if runs, _ := w.sweepUntilClean(runtag.Selector{}); runs != 1 {
		t.Errorf("took %d sweeps", runs)
	}
	if keys := w.d.KeyPairs(); len(keys) != 1 || keys[0].Name != "deploydrill-other" {
		t.Errorf("key pairs after the sweep: %+v, want the untagged one untouched", keys)
	}
	w.assertClean()
}

func TestSweepSaysItKeepsAPersistentRepositoryOnce(t *testing.T) {
	w := newWorld(t, awsdouble.Options{})
	if _, err := w.repo.EnsureRepository(t.Context(), w.run, false); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	w.log = slog.New(slog.NewTextHandler(&logs, nil))
	res, err := w.plan().Sweep(t.Context(), runtag.Selector{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "keeping repository drill"); n != 1 {
		t.Errorf("said %d times that it keeps the repository, want once:\n%s", n, logs.String())
	}
	if len(res.Kept) != 1 || len(res.Remaining) != 0 {
		t.Errorf("kept %v, remaining %v", res.Kept, res.Remaining)
	}
	if _, ok := w.d.Repository("drill"); !ok {
		t.Error("sweep deleted a persistent repository")
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

	res, err := w.plan().Sweep(t.Context(), runtag.Selector{}, true)
	// Two runs of an instance, its root volume, a group and a key pair each.
	if err != nil || len(res.Found) != 8 || len(res.Remaining) != 8 || len(res.Removed) != 0 {
		t.Fatalf("dry run: %v, found %v, removed %v", err, res.Found, res.Removed)
	}
	if n := len(w.d.Leftovers(runtag.KeyCreatedBy, "")); n != 9 {
		t.Fatalf("a dry run removed something: %d left, want 9", n)
	}

	res, err = w.plan().Sweep(t.Context(), runtag.Selector{OlderThan: 2 * time.Hour, Now: now}, false)
	if err != nil || len(res.Removed) != 4 || len(res.Remaining) != 0 {
		t.Fatalf("older than 2h: %v, %+v", err, res)
	}
	if left := w.d.Leftovers(runtag.KeyRunID, "old"); !slices.Equal(left, []string{"repository drill"}) {
		t.Errorf("old run left %v, want only its persistent repository", left)
	}
	if left := w.d.Leftovers(runtag.KeyRunID, "new"); len(left) != 4 {
		t.Errorf("the newer run lost resources: %v", left)
	}

	res, err = w.plan().Sweep(t.Context(), runtag.Selector{Expired: true, Now: now}, false)
	if err != nil || len(res.Removed) != 0 {
		t.Errorf("nothing of the new run is expired yet: %v, %+v", err, res)
	}
	res, err = w.plan().Sweep(t.Context(), runtag.Selector{Expired: true, Now: now.Add(time.Hour)}, false)
	if err != nil || len(res.Removed) != 4 {
		t.Errorf("an hour later the new run is expired: %v, %+v", err, res)
	}
}
