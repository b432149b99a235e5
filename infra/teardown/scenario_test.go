package teardown_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// happyOps runs the happy path once and returns the operations provisioning and teardown
// made, in order of first use: the steps the matrix below breaks one at a time.
func happyOps(t *testing.T) (provisioning, teardownOps []string) {
	w := newWorld(t, awsdouble.Options{})
	plan, err := w.provision(t.Context())
	if err != nil {
		t.Fatalf("happy path: %v", err)
	}
	n := len(w.d.Operations())
	if err := w.teardown(t.Context(), plan); err != nil {
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
			plan, err := w.provision(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			provisioned := time.Since(start)
			if err := w.teardown(t.Context(), plan); err != nil {
				t.Fatal(err)
			}
			t.Logf("provision %s, teardown %s, %d calls", provisioned, time.Since(start)-provisioned, len(w.d.Operations()))
			w.assertClean()
			if in := w.d.Instances(); len(in) != 1 || in[0].State != "terminated" {
				t.Errorf("instances %+v, want one, terminated", in)
			}
			if err := w.teardown(t.Context(), plan); err != nil {
				t.Errorf("a second teardown must be a no-op: %v", err)
			}
		})
	}
}

func TestProvisioningInterruptedAtEachStep(t *testing.T) {
	provisioning, _ := happyOps(t)
	steps := append(provisioning, "ssh")
	for _, op := range steps {
		t.Run("cancelled after "+op, func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if op == "ssh" {
				w.sshd.RefuseFirst, w.sshd.OnRefuse = 1<<20, cancel
			} else {
				w.cancelAfter(op, cancel)
			}
			plan, err := w.provision(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("provision: %v, want context.Canceled", err)
			}
			w.d.AfterOp = nil
			if err := w.teardown(t.Context(), plan); err != nil {
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
			plan, err := w.provision(t.Context())
			if op == "ssm:GetParameter" {
				if err != nil {
					t.Fatalf("ssm failing must fall back to DescribeImages: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), f.Code) {
				t.Fatalf("provision: %v, want the %s error", err, f.Code)
			}
			if err := w.teardown(t.Context(), plan); err != nil {
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
	plan, err := w.provision(t.Context())
	if err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("provision: %v", err)
	}
	if err := w.teardown(t.Context(), plan); err != nil {
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
			plan, err := w.provision(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			w.d.Inject(fault(op))
			err = w.teardown(t.Context(), plan)
			if err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("teardown with %s refused: %v, want the injected error", op, err)
			}
			if strings.HasPrefix(op, "ec2:") {
				if _, ok := w.d.Repository("drill"); ok {
					t.Errorf("a failing EC2 step stopped the repository step: %v", err)
				}
			}
			w.d.ClearFaults()
			if err := w.teardown(t.Context(), plan); err != nil {
				t.Fatalf("second teardown: %v", err)
			}
			w.assertClean()
		})
		t.Run(op+" interrupted, then retried", func(t *testing.T) {
			w := newWorld(t, awsdouble.Options{})
			plan, err := w.provision(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w.cancelAfter(op, cancel)
			// In ctx itself, not a fresh context, so the cancellation reaches the steps.
			if err := teardown.Run(ctx, plan.Steps(), logWriter{t}); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted teardown: %v, want context.Canceled", err)
			}
			w.d.AfterOp = nil
			if err := w.teardown(t.Context(), plan); err != nil {
				t.Fatalf("second teardown: %v", err)
			}
			w.assertClean()
		})
	}
}
