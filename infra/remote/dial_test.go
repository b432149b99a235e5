package remote

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestDial(t *testing.T) {
	t.Run("a host key other than the pinned one is a security error, not retried", func(t *testing.T) {
		sshd := newTestSSHD(t)
		sshd.Start(t)
		proxy := startProxy(t, sshd.Addr)
		cfg := sshd.config(proxy.Addr)
		cfg.HostKey = newSigner(t).PublicKey()
		_, err := Dial(t.Context(), cfg)
		var mismatch *HostKeyMismatchError
		if !errors.As(err, &mismatch) {
			t.Fatalf("err = %v, want *HostKeyMismatchError", err)
		}
		if !strings.Contains(err.Error(), "security error") || !strings.Contains(err.Error(), mismatch.Presented) {
			t.Errorf("err = %q, want it to say security error and show the presented fingerprint", err)
		}
		if n := proxy.accepted.Load(); n != 1 {
			t.Errorf("%d connection attempts, want 1: a mismatch must not be retried", n)
		}
	})
	t.Run("a key the server does not authorize is rejected at once", func(t *testing.T) {
		sshd := newTestSSHD(t)
		sshd.Start(t)
		proxy := startProxy(t, sshd.Addr)
		cfg := sshd.config(proxy.Addr)
		cfg.Signer = newSigner(t)
		_, err := Dial(t.Context(), cfg)
		if !errors.Is(err, ErrAuthRejected) {
			t.Fatalf("err = %v, want ErrAuthRejected", err)
		}
		if n := proxy.accepted.Load(); n != 1 {
			t.Errorf("%d connection attempts, want 1", n)
		}
	})
	t.Run("connection refused is retried until sshd starts", func(t *testing.T) {
		sshd := newTestSSHD(t)
		retries := make(chan struct{}, 100)
		cfg := sshd.config(sshd.Addr)
		cfg.Logger = slog.New(notifyHandler{msg: "ssh not ready, retrying", ch: retries})
		type result struct {
			r   *Runner
			err error
		}
		done := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			r, err := Dial(ctx, cfg)
			done <- result{r, err}
		}()
		for range 2 {
			select {
			case <-retries:
			case res := <-done:
				t.Fatalf("Dial returned before sshd started: %v", res.err)
			}
		}
		sshd.Start(t)
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		defer res.r.Close()
		if out, err := res.r.Run(t.Context(), NewCommand("echo", "up")); err != nil || string(out) != "up\n" {
			t.Fatalf("Run after retried dial = %q, %v", out, err)
		}
	})
	t.Run("connections closed during the handshake are retried", func(t *testing.T) {
		sshd := newTestSSHD(t)
		sshd.Start(t)
		proxy := startProxy(t, sshd.Addr)
		proxy.drop.Store(2)
		r := dialTest(t, sshd.config(proxy.Addr))
		if n := proxy.accepted.Load(); n != 3 {
			t.Errorf("%d connection attempts, want 3 (two dropped, then success)", n)
		}
		if _, err := r.Run(t.Context(), NewCommand("true")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("giving up says timed out and shows the last error", func(t *testing.T) {
		sshd := newTestSSHD(t) // never started: nothing listens
		cfg := sshd.config(sshd.Addr)
		cfg.RetryFor = 400 * time.Millisecond
		_, err := Dial(t.Context(), cfg)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after") ||
			!strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
}

// notifyHandler signals ch for every log record with message msg.
type notifyHandler struct {
	msg string
	ch  chan<- struct{}
}

func (h notifyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h notifyHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h notifyHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h notifyHandler) WithGroup(string) slog.Handler      { return h }
