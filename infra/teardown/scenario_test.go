package teardown_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// happyOps runs the happy path once and returns the operations provisioning and teardown
// made, in order of first use: the steps the matrix below breaks one at a time.
func happyOps(t *testing.T) (provisioning, teardownOps []string) {
	w := newWorld(t, awsdouble.Options{})
	host, err := w.provision(t.Context())
	if err != nil {
		t.Fatalf("happy path: %v", err)
	}
	n := len(w.d.Operations())
	if err := w.teardown(t.Context(), host).Err(); err != nil {
		t.Fatalf("happy teardown: %v", err)
	}
	w.assertClean()
	ops := w.d.Operations()
	return distinct(ops[:n]), distinct(ops[n:])
}

func TestHappyPathLeavesNothing(t *testing.T) {
	tests := []struct {
		name string
		opts awsdouble.Options
	}{
		{"a calm account", awsdouble.Options{}},
		{"a fifth of all calls throttled", awsdouble.Options{Throttle: 0.2, Seed: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.opts)
			start := time.Now()
			host, err := w.provision(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			provisioned := time.Since(start)
			res := w.teardown(t.Context(), host)
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			t.Logf("provision %s, teardown %s, %d calls", provisioned, time.Since(start)-provisioned, len(w.d.Operations()))
			w.assertClean()
			if in := w.d.Instances(); len(in) != 1 || in[0].State != "terminated" {
				t.Errorf("instances %+v, want one, terminated", in)
			}
			if len(res.Remaining) != 0 {
				t.Errorf("a clean teardown says %v may remain", res.Remaining)
			}
			// The root volume goes with its instance (DeleteOnTermination).
			want := []string{"instance " + host.InstanceID, "volume " + host.VolumeIDs[0], "security group " + host.SecurityGroupID,
				"key pair deploydrill-r1", "repository drill"}
			if got := labels(res.Removed); !slices.Equal(got, want) {
				t.Errorf("removed %v, want %v (in deletion order)", got, want)
			}
			if res := w.teardown(t.Context(), host); res.Err() != nil || len(res.Remaining) != 0 {
				t.Errorf("a second teardown must be a no-op: %v, remaining %v", res.Err(), res.Remaining)
			}
		})
	}
}

func TestTeardownStepsAreTheOneDeletionOrder(t *testing.T) {
	w := newWorld(t, awsdouble.Options{})
	host, err := w.provision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	res := w.teardown(t.Context(), host)
	var names []string
	for _, s := range res.Steps {
		names = append(names, s.Name)
	}
	want := []string{"find", "terminate instances", "wait until terminated", "delete security groups", "delete key pairs",
		"delete detached volumes", "delete ephemeral repositories"}
	if !slices.Equal(names, want) {
		t.Errorf("steps %v, want %v", names, want)
	}
	sweep, err := w.plan().Sweep(t.Context(), w.selector(), false)
	if err != nil {
		t.Fatal(err)
	}
	names = names[:0]
	for _, s := range sweep.Steps {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("sweep steps %v, want the same as teardown's %v", names, want)
	}
}

// TestTeardownDeletesOnlyWhatTheRunOwns: a reused run id meets resources of the same names
// that this tool did not make (untagged). Teardown deletes what its ledger says it created and
// what carries its tags, never a namesake.
func TestTeardownDeletesOnlyWhatTheRunOwns(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(w *world)
		wantErr string // provisioning's
	}{
		{"CreateSecurityGroup failed, so the run never imported its key", func(w *world) {
			w.d.Inject(awsdouble.Fault{Op: "ec2:CreateSecurityGroup", Code: "InvalidGroup.Duplicate", Message: "exists"})
		}, "InvalidGroup.Duplicate"},
		{"the key pair's name was taken, so ImportKeyPair failed", func(*world) {}, "InvalidKeyPair.Duplicate"},
		{"RunInstances failed after the key was imported under another name", func(w *world) {
			w.d.Inject(awsdouble.Fault{Op: "ec2:ImportKeyPair", Code: "InvalidKeyPair.Duplicate", Message: "exists"})
		}, "InvalidKeyPair.Duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			if err := w.d.ImportKeyPair("deploydrill-r1", map[string]string{"owner": "someone else"}); err != nil {
				t.Fatal(err)
			}
			tt.prepare(w)
			host, err := w.provision(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("provision: %v, want %s", err, tt.wantErr)
			}
			w.d.ClearFaults()
			res := w.teardown(t.Context(), host)
			if err := res.Err(); err != nil {
				t.Fatalf("teardown: %v", err)
			}
			if keys := w.d.KeyPairs(); len(keys) != 1 || keys[0].Tags["owner"] != "someone else" {
				t.Errorf("key pairs after teardown: %+v, want the unrelated deploydrill-r1 untouched", keys)
			}
			for _, r := range res.Found {
				if r.Kind == ec2.KindKeyPair {
					t.Errorf("teardown took %s for the run's", r)
				}
			}
			w.assertClean()
		})
	}
}

func TestTeardownDryRunListsAndRemovesNothing(t *testing.T) {
	w := newWorld(t, awsdouble.Options{})
	host, err := w.provision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := w.d.Leftovers("deploydrill:run-id", "r1")
	res := w.plan().Remove(t.Context(), teardown.ForRun("r1", host), true)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if got := w.d.Leftovers("deploydrill:run-id", "r1"); !slices.Equal(got, before) {
		t.Errorf("a dry run changed %v into %v", before, got)
	}
	if len(res.Removed) != 0 || len(res.Remaining) != 5 || len(res.Found) != 5 {
		t.Errorf("dry run: found %v, removed %v, remaining %v; want 5 found and remaining", res.Found, res.Removed, res.Remaining)
	}
}

// TestAnAbortedTeardownStillNamesWhatMayRemain: the context ends part way (a second Ctrl-C,
// or the teardown deadline): the steps left are not run, and Remaining names everything the
// ledger and the finds knew, without another call. (Here the find itself is cut short, so
// only the ledger is known: the EC2 resources, not the repository.)
func TestAnAbortedTeardownStillNamesWhatMayRemain(t *testing.T) {
	w := newWorld(t, awsdouble.Options{})
	host, err := w.provision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	w.cancelAfter("ec2:DescribeInstances", cancel)
	atCancel := len(w.d.Operations()) + 1 // the DescribeInstances whose answer is lost
	res := w.plan().Remove(ctx, teardown.ForRun("r1", host), false)
	if !errors.Is(res.Err(), context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", res.Err())
	}
	want := []string{"instance " + host.InstanceID, "security group " + host.SecurityGroupID, "key pair deploydrill-r1",
		"volume " + host.VolumeIDs[0]}
	if got := labels(res.Remaining); !slices.Equal(got, want) {
		t.Errorf("remaining %v, want %v", got, want)
	}
	if ops := w.d.Operations(); len(ops) != atCancel {
		t.Errorf("calls after the context ended: %v", ops[atCancel:])
	}
	w.d.AfterOp = nil
	for _, s := range res.Steps[1:] {
		if !errors.Is(s.Err, context.Canceled) || !strings.HasPrefix(s.Err.Error(), "not run") {
			t.Errorf("step %s after the abort: %v, want not run", s.Name, s.Err)
		}
	}
	if err := w.teardown(t.Context(), host).Err(); err != nil {
		t.Fatalf("second teardown: %v", err)
	}
	w.assertClean()
}

func TestProvisioningInterruptedAtEachStep(t *testing.T) {
	provisioning, _ := happyOps(t)
	for _, op := range provisioning {
		t.Run("cancelled after "+op, func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w.cancelAfter(op, cancel)
			host, err := w.provision(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("provision: %v, want context.Canceled", err)
			}
			w.d.AfterOp = nil
			if err := w.teardown(t.Context(), host).Err(); err != nil {
				t.Fatalf("teardown: %v", err)
			}
			w.assertClean()
			if n := len(w.d.Instances()); n > 1 {
				t.Errorf("%d instances: recovering a lost RunInstances answer must not launch a second one", n)
			}
		})
	}
	for _, op := range provisioning {
		t.Run(op+" refused", func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			f := fault(op)
			f.Times = 1
			w.d.Inject(f)
			host, err := w.provision(t.Context())
			if op == "ssm:GetParameter" {
				if err != nil {
					t.Fatalf("ssm failing must fall back to DescribeImages: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), f.Code) {
				t.Fatalf("provision: %v, want the %s error", err, f.Code)
			}
			if err := w.teardown(t.Context(), host).Err(); err != nil {
				t.Fatalf("teardown: %v", err)
			}
			w.assertClean()
		})
	}
}

func TestRunInstancesFailingWithAnUnknownOutcome(t *testing.T) {
	// Every attempt the SDK makes answers 500: did EC2 launch something? Teardown replays the
	// call with the same client token to find out, and terminates whatever that returns.
	w := newWorld(t, awsdouble.Options{})
	w.d.Inject(awsdouble.Fault{Op: "ec2:RunInstances", Times: 8, Code: "InternalError", Status: 500})
	host, err := w.provision(t.Context())
	if err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("provision: %v", err)
	}
	if err := w.teardown(t.Context(), host).Err(); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	w.assertClean()
	if in := w.d.Instances(); len(in) != 1 || in[0].State != "terminated" {
		t.Errorf("instances %+v: the replay should have launched one, then teardown terminated it", in)
	}
}

func TestTeardownFailingAtEachStep(t *testing.T) {
	_, teardownOps := happyOps(t)
	for _, op := range teardownOps {
		t.Run(op+" refused, then retried", func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			host, err := w.provision(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			w.d.Inject(fault(op))
			res := w.teardown(t.Context(), host)
			if err := res.Err(); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("teardown with %s refused: %v, want the injected error", op, err)
			}
			if len(res.Remaining) == 0 && res.Steps[0].Err == nil {
				// (When a listing failed, what it would have found is unknown: the caller says so.)
				t.Errorf("teardown with %s refused says nothing may remain", op)
			}
			if strings.HasPrefix(op, "ec2:") {
				if _, ok := w.d.Repository("drill"); ok {
					t.Errorf("a failing EC2 step stopped the repository step: %v", res.Err())
				}
			}
			w.d.ClearFaults()
			if err := w.teardown(t.Context(), host).Err(); err != nil {
				t.Fatalf("second teardown: %v", err)
			}
			w.assertClean()
		})
		t.Run(op+" interrupted, then retried", func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			host, err := w.provision(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w.cancelAfter(op, cancel)
			// In ctx itself, not a fresh context, so the cancellation reaches the steps.
			if err := w.plan().Remove(ctx, teardown.ForRun("r1", host), false).Err(); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted teardown: %v, want context.Canceled", err)
			}
			w.d.AfterOp = nil
			if err := w.teardown(t.Context(), host).Err(); err != nil {
				t.Fatalf("second teardown: %v", err)
			}
			w.assertClean()
		})
	}
}
