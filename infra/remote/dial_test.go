package remote

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
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
	t.Run("a server that drops the client after too many auth failures is a rejection, not a retry", func(t *testing.T) {
		// OpenSSH with MaxAuthTries 1 disconnects ("Too many authentication failures") instead
		// of answering with the failure x/crypto words as "unable to authenticate".
		sshd := newTestSSHD(t)
		appendConfig(t, sshd, "MaxAuthTries 1\n")
		sshd.Start(t)
		proxy := startProxy(t, sshd.Addr)
		cfg := sshd.config(proxy.Addr)
		cfg.Signer = newSigner(t)
		cfg.RetryFor = 2 * time.Second
		_, err := Dial(t.Context(), cfg)
		if !errors.Is(err, ErrAuthRejected) || proxy.accepted.Load() != 1 {
			t.Fatalf("err = %v after %d connections, want ErrAuthRejected after 1", err, proxy.accepted.Load())
		}
	})
	t.Run("giving up says timed out and shows the last error", func(t *testing.T) {
		sshd := newTestSSHD(t) // never started: nothing listens
		cfg := sshd.config(sshd.Addr)
		cfg.RetryFor = 400 * time.Millisecond
		_, err := Dial(t.Context(), cfg)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 400ms waiting for ssh on") ||
			!strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a cancelled caller says interrupted", func(t *testing.T) {
		sshd := newTestSSHD(t) // never started
		cfg := sshd.config(sshd.Addr)
		retries := make(chan struct{}, 100)
		cfg.Logger = slog.New(notifyHandler{msg: "ssh not ready, retrying", ch: retries})
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-retries; cancel() }()
		_, err := Dial(ctx, cfg)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted after") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a handshake that never completes ends with the caller's deadline", func(t *testing.T) {
		silent := silentServer(t)
		cfg := Config{Addr: silent, User: "u", Signer: newSigner(t), HostKey: newSigner(t).PublicKey(), RetryFor: time.Minute}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Dial(ctx, cfg)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("err = %v after %s, want the caller's deadline", err, time.Since(start))
		}
	})
}

func TestReconnectMakesOneAttempt(t *testing.T) {
	sshd := newTestSSHD(t)
	sshd.Start(t)
	proxy := startProxy(t, sshd.Addr)
	first := dialTest(t, sshd.config(proxy.Addr))

	proxy.drop.Store(1)
	_, err := first.Reconnect(t.Context())
	if err == nil || errors.Is(err, ErrAuthRejected) || proxy.accepted.Load() != 2 {
		t.Fatalf("reconnect through a dropped connection: %v after %d connections, want one transient failure", err, proxy.accepted.Load())
	}
	if first.Err() == nil {
		t.Error("Reconnect left the old connection open")
	}
	second, err := first.Reconnect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if proxy.accepted.Load() != 3 {
		t.Errorf("%d connections, want 3", proxy.accepted.Load())
	}
	if out, err := second.Run(t.Context(), NewCommand("echo", "again")); err != nil || string(out) != "again\n" {
		t.Fatalf("Run after Reconnect = %q, %v", out, err)
	}

	sshd2 := newTestSSHD(t) // another host key answers at the address now
	sshd2.Start(t)
	cfg := sshd.config(sshd2.Addr)
	cfg.Signer = sshd2.Client
	r := dialTestWithKey(t, cfg, sshd2.Host.PublicKey())
	r.cfg.HostKey = sshd.Host.PublicKey()
	var mismatch *HostKeyMismatchError
	if _, err := r.Reconnect(t.Context()); !errors.As(err, &mismatch) {
		t.Fatalf("reconnect to another host: %v, want *HostKeyMismatchError", err)
	}
}

// dialTestWithKey dials with hostKey pinned instead of cfg's.
func dialTestWithKey(t *testing.T, cfg Config, hostKey ssh.PublicKey) *Runner {
	t.Helper()
	cfg.HostKey = hostKey
	return dialTest(t, cfg)
}

// appendConfig adds lines to a prepared sshd's configuration before Start.
func appendConfig(t *testing.T, s *testSSHD, lines string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.dir, "sshd_config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		t.Fatal(err)
	}
}

// silentServer accepts TCP connections and never says a word: a handshake with it never ends.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
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
