package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dialTest connects to addr with the sshd's keys and closes the Runner at the end of the test.
func dialTest(t *testing.T, cfg Config) *Runner {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRunOverRealSSHD(t *testing.T) {
	sshd := newTestSSHD(t)
	sshd.Start(t)
	proxy := startProxy(t, sshd.Addr)
	r := dialTest(t, sshd.config(proxy.Addr))
	dir := t.TempDir()

	t.Run("a command's stdout is returned", func(t *testing.T) {
		out, err := r.Run(t.Context(), NewCommand("echo", "hello", "it's me"))
		if err != nil || string(out) != "hello it's me\n" {
			t.Fatalf("Run = %q, %v", out, err)
		}
	})
	t.Run("a failing command's error carries its exit status and stderr", func(t *testing.T) {
		_, err := r.Run(t.Context(), NewCommand("sh", "-c", "echo working; echo 'pull access denied' >&2; exit 3"))
		var exit *ExitError
		if !errors.As(err, &exit) || exit.Status != 3 || exit.Stderr != "pull access denied" {
			t.Fatalf("err = %#v, want exit 3 with stderr", err)
		}
		if want := `sh -c 'echo working; echo '\''pull access denied'\'' >&2; exit 3': exit 3: pull access denied`; err.Error() != want {
			t.Errorf("err = %q\nwant  %q", err, want)
		}
	})
	t.Run("a sequence stops at the first failing step", func(t *testing.T) {
		marker := filepath.Join(dir, "ran")
		_, err := r.Run(t.Context(), Sequence(NewCommand("false"), NewCommand("touch", marker)))
		if err == nil || !strings.HasPrefix(err.Error(), "false: exit 1") {
			t.Fatalf("err = %v, want the failing step named", err)
		}
		if _, err := os.Stat(marker); !os.IsNotExist(err) {
			t.Errorf("the step after the failure ran (stat: %v)", err)
		}
	})
	t.Run("a sequence's stdout is the steps' stdout in order", func(t *testing.T) {
		out, err := r.Run(t.Context(), Sequence(NewCommand("echo", "one"), NewCommand("echo", "two")))
		if err != nil || string(out) != "one\ntwo\n" {
			t.Fatalf("Run = %q, %v", out, err)
		}
	})
	t.Run("commands run concurrently over the one connection", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				if _, err := r.Run(t.Context(), NewCommand("true")); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := proxy.accepted.Load(); n != 1 {
			t.Errorf("%d TCP connections, want 1 reused", n)
		}
	})
}

func TestSecretStdin(t *testing.T) {
	sshd := newTestSSHD(t)
	sshd.Start(t)
	var logs bytes.Buffer
	cfg := sshd.config(sshd.Addr)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := dialTest(t, cfg)
	const secret = "eyJwYXlsb2FkIjoiZWNyLXRva2VuIn0="

	t.Run("stdin reaches the command", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "password")
		if _, err := r.Run(t.Context(), NewCommand("sh", "-c", `cat > "$1"`, "sh", file), WithSecretStdin(secret)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(file); string(got) != secret {
			t.Errorf("remote stdin = %q, want the secret", got)
		}
	})
	t.Run("a secret echoed to stdout is redacted", func(t *testing.T) {
		out, err := r.Run(t.Context(), NewCommand("cat"), WithSecretStdin(secret))
		if err != nil || string(out) != redacted {
			t.Fatalf("Run = %q, %v", out, err)
		}
	})
	t.Run("a secret echoed to stderr never reaches the error", func(t *testing.T) {
		_, err := r.Run(t.Context(), NewCommand("sh", "-c", "echo token: $(cat) >&2; exit 1"), WithSecretStdin(secret))
		if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "token: "+redacted) {
			t.Fatalf("err = %v, want the secret redacted", err)
		}
	})
	t.Run("a secret put in argv by mistake is redacted from errors and logs", func(t *testing.T) {
		_, err := r.Run(t.Context(), NewCommand("false", secret), WithSecretStdin(secret))
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("err = %v, want the secret redacted", err)
		}
	})
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the logs hold the secret:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "ssh run") {
		t.Errorf("the logs show no commands, so the check above proves nothing:\n%s", logs.String())
	}
}

func TestContextEndKillsTheRemoteCommand(t *testing.T) {
	sshd := newTestSSHD(t)
	sshd.Start(t)
	cfg := sshd.config(sshd.Addr)
	cfg.KillGrace = 300 * time.Millisecond
	r := dialTest(t, cfg)

	// Unique sleep durations, so the test finds its own process in /proc and no other.
	seconds := func() string { return fmt.Sprintf("%d.%d", 3000+rand.IntN(1000), rand.IntN(1000000)) }
	s1, s2, s3 := seconds(), seconds(), seconds()
	tests := []struct {
		name    string
		argv    []string
		marker  string // how its command line starts in /proc
		opts    []RunOption
		cancel  bool // cancel the context once the process runs, instead of WithTimeout
		wantErr error
		wantMsg string
	}{
		{"a command timeout stops the process and says timed out",
			[]string{"sleep", s1}, "sleep\x00" + s1, []RunOption{WithTimeout(time.Second)}, false,
			context.DeadlineExceeded, "sleep " + s1 + ": timed out after"},
		{"a cancelled context stops the process and says interrupted",
			[]string{"sleep", s2}, "sleep\x00" + s2, nil, true,
			context.Canceled, "sleep " + s2 + ": interrupted after"},
		{"a process ignoring SIGTERM gets SIGKILL after the grace period",
			[]string{"sh", "-c", `trap "" TERM; exec sleep ` + s3}, "sleep\x00" + s3, []RunOption{WithTimeout(time.Second)}, false,
			context.DeadlineExceeded, "timed out after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			// Watch for the remote process while Run runs: the test proves something only if the
			// process was seen alive before Run returned.
			watch, stopWatch := context.WithCancel(ctx)
			seen := make(chan bool, 1)
			go func() {
				found := waitForProcess(watch, tt.marker, true)
				if found && tt.cancel {
					cancel()
				}
				seen <- found
			}()
			_, err := r.Run(ctx, NewCommand(tt.argv...), tt.opts...)
			stopWatch()
			if !<-seen {
				t.Fatalf("the remote %q was never seen running before Run returned (%v)", tt.argv, err)
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), "remote process stopped") {
				t.Fatalf("err = %v, want %v mentioning %q and the process stopped", err, tt.wantErr, tt.wantMsg)
			}
			waitCtx, waitCancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer waitCancel()
			if !waitForProcess(waitCtx, tt.marker, false) {
				t.Fatalf("the remote %q still runs 10s after Run returned", tt.argv)
			}
		})
	}
	if _, err := r.Run(t.Context(), NewCommand("true")); err != nil {
		t.Errorf("the connection is unusable after timeouts: %v", err)
	}
}

// waitForProcess polls /proc (sshd runs on this machine) until a live process whose command line
// starts with marker exists (want true) or none does (want false). Zombies count as gone.
func waitForProcess(ctx context.Context, marker string, want bool) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if processRunning(marker) == want {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

func processRunning(marker string) bool {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmdline), marker) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] != 'Z' {
			return true
		}
	}
	return false
}

func TestKeepaliveClosesADeadConnection(t *testing.T) {
	sshd := newTestSSHD(t)
	sshd.Start(t)
	proxy := startProxy(t, sshd.Addr)
	cfg := sshd.config(proxy.Addr)
	cfg.KeepaliveInterval, cfg.KeepaliveCountMax = 50*time.Millisecond, 3
	r := dialTest(t, cfg)
	if _, err := r.Run(t.Context(), NewCommand("true")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
		t.Fatalf("a live connection was closed: %v", r.Err())
	case <-time.After(4 * cfg.KeepaliveInterval * time.Duration(cfg.KeepaliveCountMax)):
	}

	proxy.frozen.Store(true) // the host stops answering, no FIN, no RST
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	inFlight := make(chan error, 1)
	go func() { _, err := r.Run(ctx, NewCommand("true")); inFlight <- err }()
	select {
	case <-r.Done():
	case <-ctx.Done():
		t.Fatal("the connection to a frozen host is still open after 10s")
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "no keepalive reply") {
		t.Fatalf("Err() = %v, want it to say the keepalive went unanswered", err)
	}
	if err := <-inFlight; err == nil || !strings.Contains(err.Error(), "no keepalive reply") {
		t.Errorf("a command waiting on the frozen host = %v, want the keepalive failure", err)
	}
	if _, err := r.Run(t.Context(), NewCommand("true")); err == nil || !strings.Contains(err.Error(), "no keepalive reply") {
		t.Errorf("Run on a closed connection = %v, want the keepalive failure", err)
	}
}
