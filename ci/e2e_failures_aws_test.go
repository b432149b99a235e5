package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// Failures of the AWS target, each in its own lab: what a real account and a real host do to a
// drill, and what the drill must do about it (retry, abort with a clear error, tear down).

func TestAWSDrillRetriesSSHWhileTheHostBoots(t *testing.T) {
	t.Parallel()
	l := startAWSLab(t, awslab.Options{SSHRefusedFor: 4 * time.Second})
	d := newAWSDrill(t, l, "ssh")
	run := d.run(t)
	if err := run.err(); err != nil {
		t.Fatalf("drill: %v\n%s", err, run.stderr)
	}
	if !d.report(t).Passed {
		t.Errorf("the drill did not pass:\n%s", run.stderr)
	}
	if l.SSHRefusals() == 0 {
		t.Error("no SSH connection was refused: the test proves nothing about retrying")
	}
	t.Logf("%d SSH connections refused while the host booted", l.SSHRefusals())
	l.AssertNothingLeft(t)
}

func TestAWSDrillAbortsOnAHostKeyMismatch(t *testing.T) {
	t.Parallel()
	l := startAWSLab(t, awslab.Options{WrongHostKey: true})
	d := newAWSDrill(t, l, "key")
	d.abortsEarly = true
	run := d.run(t)
	if run.exit != 1 || !strings.Contains(run.stderr, "host key") || !strings.Contains(run.stderr, "security") {
		t.Fatalf("drill: exit %d, want 1 and a security error about the host key\n%s", run.exit, run.stderr)
	}
	// A mismatch is never retried (a host still booting may be, before it presents its key).
	for _, line := range strings.Split(run.stderr, "\n") {
		if strings.Contains(line, "retrying") && strings.Contains(line, "host key") {
			t.Errorf("the mismatch was retried: %s", line)
		}
	}
	if !strings.Contains(run.stderr, "removed key pair deploydrill-"+d.runID) {
		t.Errorf("no teardown after the mismatch:\n%s", run.stderr)
	}
	l.AssertNothingLeft(t)
}

func TestAWSDrillFailsClearlyWhenThePullFails(t *testing.T) {
	t.Parallel()
	l := startAWSLab(t, awslab.Options{FailPulls: true})
	d := newAWSDrill(t, l, "pull")
	d.abortsEarly = true
	run := d.run(t)
	if run.exit != 1 || !strings.Contains(run.stderr, "pull") || !strings.Contains(run.stderr, "manifest unknown") {
		t.Fatalf("drill: exit %d, want 1 and an error naming the pull and the registry's answer\n%s", run.exit, run.stderr)
	}
	r := d.report(t)
	if r.Passed || !strings.Contains(r.Error, "manifest unknown") || r.TeardownError != "" {
		t.Errorf("report: passed=%v error=%q teardown_error=%q, want the pull error and a clean teardown", r.Passed, r.Error, r.TeardownError)
	}
	l.AssertNothingLeft(t)
}

// TestAWSDrillSignals signals the drill's process.
func TestAWSDrillSignals(t *testing.T) {
	t.Parallel()
	// Ctrl-C during the outage window: the teardown completes, the report says the drill was
	// interrupted, the exit status is 130 and nothing is left.
	t.Run("SIGINT during the outage window", func(t *testing.T) {
		t.Parallel()
		l := startAWSLab(t, awslab.Options{})
		d := newAWSDrill(t, l, "int", "--outage", "60s")
		p := d.start(t, " outage ")
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if exit := p.wait(t); exit != 130 {
			t.Errorf("exit status %d, want 130\n%s", exit, p.stderr)
		}
		r := d.report(t)
		if r.Passed || !strings.Contains(r.Error, "interrupted") || r.TeardownError != "" {
			t.Errorf("report: passed=%v error=%q teardown_error=%q, want interrupted and a clean teardown", r.Passed, r.Error, r.TeardownError)
		}
		if !strings.Contains(p.stderr.String(), "passed: teardown releases everything") {
			t.Errorf("teardown did not complete:\n%s", p.stderr)
		}
		l.AssertNothingLeft(t)
	})

	// SIGKILL during the live window leaves the run's resources for `sweep --run-id`.
	t.Run("SIGKILL during the live window, then sweep", func(t *testing.T) {
		t.Parallel()
		l := startAWSLab(t, awslab.Options{})
		const repo = "drill-killed"
		d := newAWSDrill(t, l, "kill", "--live", "60s", "--repository", repo, "--ephemeral-repo")
		p := d.start(t, " live ")
		if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil { // the runner and its Dagger session
			t.Fatal(err)
		}
		_ = p.wait(t)
		if len(l.Leftovers()) == 0 {
			t.Fatal("the killed run left nothing: the sweep below proves nothing")
		}
		sweep := runCLI(t, l.Env(), "sweep", "--run-id", d.runID, "--repository", repo)
		if err := sweep.err(); err != nil {
			t.Fatalf("sweep: %v\n%s", err, sweep.stderr)
		}
		t.Logf("sweep removed:\n%s", sweep.stdout)
		l.AssertNothingLeft(t)
	})
}

// Every input is checked before anything is created, the AWS ones included: a malformed --ami,
// --subnet, CIDR or run id, or an unknown region with an endpoint override set, is a usage
// error (exit 2), and the double served no call that creates anything.
func TestAWSDrillRefusesBadInputBeforeCreatingAnything(t *testing.T) {
	t.Parallel()
	l := startAWSLab(t, awslab.Options{})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a malformed AMI id", []string{"--ami", "ubuntu-noble"}, "ami"},
		{"a malformed subnet id", []string{"--subnet", "default"}, "subnet"},
		{"a CIDR with host bits", []string{"--ssh-cidr", "10.0.0.1/8"}, "ssh-cidr"},
		{"a malformed run id", []string{"--run-id", "Bad Run!"}, "run"},
		{"an unknown region despite the endpoint override", []string{"--region", "eu-wset-1"}, "did you mean"},
		{"a fleet faulting more hosts than it has", []string{"--hosts", "3", "--fault-hosts", "4"}, "fault hosts 4"},
		{"a fleet in one subnet", []string{"--hosts", "2", "--subnet", "subnet-0123456789abcdef0"}, "two or more zones"},
		{"a health check interval of a fraction of a second", []string{"--hosts", "2", "--health-interval", "7500ms"}, "health check interval"},
		{"a health check threshold out of range", []string{"--hosts", "2", "--unhealthy-threshold", "1"}, "unhealthy threshold"},
		{"no hosts at all", []string{"--hosts", "0"}, "--hosts 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newAWSDrill(t, l, "bad", tt.args...)
			before := len(l.Double.Operations())
			run := runCLI(t, l.Env(), d.args...) // no drill starts: no drill slot
			if run.exit != 2 || !strings.Contains(strings.ToLower(run.stderr), tt.want) {
				t.Fatalf("exit %d, want 2, a usage error about %s\n%s", run.exit, tt.want, run.stderr)
			}
			if served := l.Double.Operations()[before:]; len(served) > 0 {
				t.Errorf("the double served %q before the input was refused", served)
			}
		})
	}
}
