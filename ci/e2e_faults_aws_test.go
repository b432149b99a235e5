package main

import (
	"os"
	"slices"
	"testing"

	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// outageSymptoms is what each fault's outage may show (the drill's table, restated as ground
// truth for this test).
var outageSymptoms = map[string][]string{
	"kill":       {"refused", "reset"},
	"hang":       {"timeout"},
	"partition":  {"timeout"},
	"slow":       {"timeout"},
	"crashloop":  {"refused", "reset", "timeout", "ok"},
	"bad-deploy": {"http_error", "wrong_version"},
}

// Every fault kind on the AWS target, each in a netns lab of its own, side by side: the drill
// passes, its outage shows the fault's own symptoms and was detected by the first probe after
// the fault, and the host held no trace of the fault when EC2 terminated it (no rule, no bound
// queue, no fault process, nothing paused, restart policy "no").
func TestAWSDrillFaults(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"kill", "hang", "partition", "slow", "crashloop", "bad-deploy"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			l := startAWSLab(t, awslab.Options{})
			d := newAWSDrill(t, l, "f", "--fault", kind, "--auto-rollback", "--failure-window", "5", "--outage", "15s")
			before := len(l.Instances())
			run := d.run(t)
			if err := run.err(); err != nil {
				t.Fatalf("drill: %v\n%s", err, run.stderr)
			}
			r := d.report(t)
			checkOutageSymptoms(t, r, kind)
			checkDetected(t, r)
			checkFaultGone(t, l, before)
			l.AssertNothingLeft(t)
		})
	}
}

// checkOutageSymptoms checks the drill passed and its outage showed only kind's symptoms.
func checkOutageSymptoms(t *testing.T, r report.Report, kind string) {
	t.Helper()
	var outage int
	for _, s := range r.Samples {
		if s.Phase == "outage" {
			outage++
			if !slices.Contains(outageSymptoms[kind], s.Outcome) {
				t.Errorf("outage sample %s: not a %s symptom", s.Outcome, kind)
			}
		}
	}
	if !r.Passed || outage == 0 {
		t.Errorf("passed %v with %d outage samples: %+v", r.Passed, outage, r.Expectations)
	}
}

// SIGINT while a fault is in effect: the teardown still clears it before the host goes.
func TestAWSDrillInterruptedDuringAFault(t *testing.T) {
	t.Parallel()
	l := startAWSLab(t, awslab.Options{})
	d := newAWSDrill(t, l, "fi", "--fault", "partition", "--outage", "60s")
	p := d.start(t, " outage ")
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if exit := p.wait(t); exit != 130 {
		t.Errorf("exit status %d, want 130", exit)
	}
	checkFaultGone(t, l, 0)
	l.AssertNothingLeft(t)
}

// checkFaultGone reads each instance booted after the first skip at its termination.
func checkFaultGone(t *testing.T, l *awslab.Lab, skip int) {
	t.Helper()
	instances := l.Instances()
	if len(instances) <= skip {
		t.Fatal("the drill booted no instance")
	}
	for _, in := range instances[skip:] {
		state, err := in.AtTermination()
		if err != nil {
			t.Fatal(err)
		}
		if left := state.Clean(); len(left) > 0 {
			t.Errorf("instance %s at termination still had %q (marker %s)", in.ID, left, remote.FaultMarker)
		}
	}
}
