package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// The drill as users run it: this package built once into a binary, run as a process of its
// own with its own environment. Tests that set the environment (the AWS lab's endpoint and
// credentials) or send signals use it, so they can run side by side.

var drillBuild struct {
	once sync.Once
	dir  string
	exe  string
	err  error
}

// drillBinary is this package built once per test binary (later calls wait for the first).
func drillBinary(t testing.TB) string {
	t.Helper()
	drillBuild.once.Do(func() {
		drillBuild.dir, drillBuild.err = os.MkdirTemp("", "deploydrill-e2e-")
		if drillBuild.err != nil {
			return
		}
		drillBuild.exe = filepath.Join(drillBuild.dir, "drill")
		if out, err := exec.Command("go", "build", "-o", drillBuild.exe, ".").CombinedOutput(); err != nil {
			drillBuild.err = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if drillBuild.err != nil {
		t.Fatal(drillBuild.err)
	}
	return drillBuild.exe
}

// removeDrillBinary is for TestMain, after the tests.
func removeDrillBinary() {
	if drillBuild.dir != "" {
		os.RemoveAll(drillBuild.dir)
	}
}

// drillSlot takes weight of the machine's test slots for a drill (testenv.Slot).
func drillSlot(t testing.TB, weight int) (release func()) {
	t.Helper()
	if weight == 0 {
		return func() {}
	}
	return testenv.Slot(t, weight)
}

// cliRun is one finished run of the binary.
type cliRun struct {
	stdout, stderr string
	exit           int // 0, 1 failed, 2 usage, 130 interrupted...
	took           time.Duration
}

// err says how the run ended, for t.Fatalf; nil when it exited 0.
func (r cliRun) err() error {
	if r.exit == 0 {
		return nil
	}
	return fmt.Errorf("exit status %d: %s", r.exit, lastLine(r.stderr))
}

// runCLI runs the binary with args and env added to this process's environment, bounded by the
// test's context, and waits for it.
func runCLI(t testing.TB, env []string, args ...string) cliRun {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), drillBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := cliRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		r.exit = exit.ExitCode()
	default:
		t.Fatalf("run the drill: %v\n%s", err, r.stderr)
	}
	return r
}

// drillProcess is the drill running as its own process, in its own process group.
type drillProcess struct {
	cmd    *exec.Cmd
	stderr *lineWatcher
	done   chan struct{}
	err    error // cmd.Wait's, once done is closed
}

// startCLI runs a drill of the binary with args and env in weight drill slots and returns once stderr
// showed a line containing marker; the process is killed at cleanup if it still runs.
func startCLI(t *testing.T, weight int, env []string, marker string, args ...string) *drillProcess {
	t.Helper()
	release := drillSlot(t, weight)
	t.Cleanup(release)
	p := &drillProcess{cmd: exec.Command(drillBinary(t), args...), stderr: &lineWatcher{want: marker, seen: make(chan struct{})}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); release(); close(p.done) }()
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

// wait returns the process's exit status once it has exited (at most 3 minutes).
func (p *drillProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		if testing.Verbose() {
			t.Logf("stderr of the drill process (%v):\n%s", p.err, p.stderr)
		}
		var exit *exec.ExitError
		if errors.As(p.err, &exit) {
			return exit.ExitCode()
		}
		if p.err != nil {
			t.Fatalf("the drill process: %v", p.err)
		}
		return 0
	case <-time.After(3 * time.Minute):
		t.Fatalf("the drill did not exit within 3m:\n%s", p.stderr)
		return 0
	}
}

// lineWatcher collects output and signals once a line containing want appeared.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestMain(m *testing.M) {
	code := m.Run()
	removeDrillBinary()
	os.Exit(code)
}
