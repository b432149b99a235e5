package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// Failures of the AWS target, each in its own lab: what a real account and a real host do to a
// drill, and what the drill must do about it (retry, abort with a clear error, tear down).

func TestAWSDrillRetriesSSHWhileTheHostBoots(t *testing.T) {
	l := startAWSLab(t, awslab.Options{SSHRefusedFor: 4 * time.Second})
	d := newAWSDrill(t, l, "ssh")
	_, stderr, err := d.run(t)
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, stderr)
	}
	if !d.report(t).Passed {
		t.Errorf("the drill did not pass:\n%s", stderr)
	}
	if l.SSHRefusals() == 0 {
		t.Error("no SSH connection was refused: the test proves nothing about retrying")
	}
	t.Logf("%d SSH connections refused while the host booted", l.SSHRefusals())
	l.AssertNothingLeft(t)
}

func TestAWSDrillAbortsOnAHostKeyMismatch(t *testing.T) {
	l := startAWSLab(t, awslab.Options{WrongHostKey: true})
	d := newAWSDrill(t, l, "key")
	start := time.Now()
	_, stderr, err := d.run(t)
	if err == nil || !strings.Contains(err.Error(), "host key") || !strings.Contains(err.Error(), "security") {
		t.Fatalf("drill: %v, want a security error about the host key\n%s", err, stderr)
	}
	if took := time.Since(start); took > 2*time.Minute {
		t.Errorf("the mismatch took %s to abort the run: it was retried", took)
	}
	if !strings.Contains(stderr, "removed key pair deploydrill-"+d.runID) {
		t.Errorf("no teardown after the mismatch:\n%s", stderr)
	}
	l.AssertNothingLeft(t)
}

func TestAWSDrillFailsClearlyWhenThePullFails(t *testing.T) {
	l := startAWSLab(t, awslab.Options{FailPulls: true})
	d := newAWSDrill(t, l, "pull")
	_, stderr, err := d.run(t)
	if err == nil || !strings.Contains(err.Error(), "pull") || !strings.Contains(err.Error(), "manifest unknown") {
		t.Fatalf("drill: %v, want an error naming the pull and the registry's answer\n%s", err, stderr)
	}
	r := d.report(t)
	if r.Passed || !strings.Contains(r.Error, "manifest unknown") || r.TeardownError != "" {
		t.Errorf("report: passed=%v error=%q teardown_error=%q, want the pull error and a clean teardown", r.Passed, r.Error, r.TeardownError)
	}
	l.AssertNothingLeft(t)
}

// TestAWSDrillSignals runs the drill as a process of its own (one build, shared) and signals it.
func TestAWSDrillSignals(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "drill")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// Ctrl-C during the outage window: the teardown completes, the report says the drill was
	// interrupted, the exit status is 130 and nothing is left.
	t.Run("SIGINT during the outage window", func(t *testing.T) {
		l := startAWSLab(t, awslab.Options{})
		d := newAWSDrill(t, l, "int", "--outage", "60s")
		p := startDrillProcess(t, exe, l, d, " outage ")
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err := p.wait(t)
		if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 130 {
			t.Errorf("exit: %v, want status 130\n%s", err, p.stderr)
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
		l := startAWSLab(t, awslab.Options{})
		const repo = "drill-killed"
		d := newAWSDrill(t, l, "kill", "--live", "60s", "--repository", repo, "--ephemeral-repo")
		p := startDrillProcess(t, exe, l, d, " live ")
		if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil { // the runner and its Dagger session
			t.Fatal(err)
		}
		_ = p.wait(t)
		if len(l.Leftovers()) == 0 {
			t.Fatal("the killed run left nothing: the sweep below proves nothing")
		}

		l.Setenv(t)
		var out, errs strings.Builder
		if err := dispatch(t.Context(), []string{"sweep", "--run-id", d.runID, "--repository", repo}, &out, &errs); err != nil {
			t.Fatalf("sweep: %v\n%s", err, errs.String())
		}
		t.Logf("sweep removed:\n%s", out.String())
		l.AssertNothingLeft(t)
	})
}

// drillProcess is the drill running as its own process, in its own process group.
type drillProcess struct {
	cmd    *exec.Cmd
	stderr *lineWatcher
	done   chan struct{}
	err    error // cmd.Wait's, once done is closed
}

// startDrillProcess runs exe with the drill's flags and the lab's environment and returns once
// stderr showed a line containing marker.
func startDrillProcess(t *testing.T, exe string, l *awslab.Lab, d *awsDrill, marker string) *drillProcess {
	t.Helper()
	p := &drillProcess{cmd: exec.Command(exe, d.args...), stderr: &lineWatcher{want: marker, seen: make(chan struct{})}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), l.Env()...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	select {
	case <-p.stderr.seen:
		return p
	case <-p.done:
		t.Fatalf("the drill exited (%v) before %q:\n%s", p.err, marker, p.stderr)
	case <-time.After(3 * time.Minute):
		t.Fatalf("no %q within 3m:\n%s", marker, p.stderr)
	}
	return nil
}

// wait returns the process's exit error once it has exited (at most 3 minutes).
func (p *drillProcess) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		if testing.Verbose() {
			t.Logf("stderr of the drill process (%v):\n%s", p.err, p.stderr)
		}
		return p.err
	case <-time.After(3 * time.Minute):
		t.Fatalf("the drill did not exit within 3m:\n%s", p.stderr)
		return nil
	}
}

// Every input is checked before anything is created, the AWS ones included: a malformed --ami,
// --subnet, CIDR or run id, or an unknown region with an endpoint override set, is a usage
// error (exit 2), and the double served no call that creates anything.
func TestAWSDrillRefusesBadInputBeforeCreatingAnything(t *testing.T) {
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
			_, stderr, err := d.run(t)
			if !errors.Is(err, errUsage) || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Fatalf("err = %v, want a usage error about %s\n%s", err, tt.want, stderr)
			}
			if served := l.Double.Operations()[before:]; len(served) > 0 {
				t.Errorf("the double served %q before the input was refused", served)
			}
		})
	}
}
