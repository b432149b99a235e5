package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/wait"
)

// Config says where and how to connect. Addr, User, Signer and HostKey are required.
type Config struct {
	Addr    string        // host:port
	User    string        // remote account, e.g. ubuntu
	Signer  ssh.Signer    // the client's private key; never logged
	HostKey ssh.PublicKey // pinned: any other key is a *HostKeyMismatchError, never retried

	// RetryFor bounds how long Dial keeps retrying a host that is still booting (default 3m);
	// the context's deadline, if sooner, wins.
	RetryFor time.Duration
	// AttemptTimeout bounds one TCP connect plus SSH handshake (default 10s).
	AttemptTimeout time.Duration
	// KeepaliveInterval is how often a keepalive@openssh.com request is sent (default 5s);
	// after KeepaliveCountMax intervals without a reply (default 3) the connection is closed.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	// KillGrace is how long a timed-out command has between SIGTERM and SIGKILL (default 2s).
	KillGrace time.Duration
	// Logger receives progress (retries, keepalive failures, commands at debug level); nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.RetryFor <= 0 {
		c.RetryFor = 3 * time.Minute
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 10 * time.Second
	}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = 5 * time.Second
	}
	if c.KeepaliveCountMax <= 0 {
		c.KeepaliveCountMax = 3
	}
	if c.KillGrace <= 0 {
		c.KillGrace = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// HostKeyMismatchError means the server presented a host key other than the pinned one: either the
// wrong machine answers at that address or someone is in the middle. It is a security error; Dial
// never retries it.
type HostKeyMismatchError struct {
	Addr      string
	Pinned    string // SHA256 fingerprint of the pinned key
	Presented string // SHA256 fingerprint of the key the server showed
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("security error: ssh host key of %s is %s, not the pinned %s: refusing to connect (wrong host or man in the middle)",
		e.Addr, e.Presented, e.Pinned)
}

// ErrAuthRejected means the server refused the client key. Not retried: a booting host installs
// the authorized key before sshd listens.
var ErrAuthRejected = errors.New("ssh authentication rejected")

// backoff paces Dial's attempts; RetryFor is its deadline.
const (
	firstRetry = 100 * time.Millisecond
	maxRetry   = 2 * time.Second
)

// Dial connects to cfg.Addr, retrying with backoff while the host refuses or drops connections (as
// it does for the first seconds of boot), and returns a Runner that reuses the connection for every
// command. A host key mismatch or a rejected key ends the retries at once.
func Dial(ctx context.Context, cfg Config) (*Runner, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	target := cfg.User + "@" + cfg.Addr
	start := time.Now()
	var runner *Runner
	attempts := 0
	poll := wait.Poll{Initial: firstRetry, Max: maxRetry, Timeout: cfg.RetryFor}
	err := poll.Run(ctx, "ssh on "+target, func(ctx context.Context) (bool, error) {
		attempts++
		client, err := dialOnce(ctx, cfg)
		switch {
		case err == nil:
			runner = newRunner(client, cfg)
			return true, nil
		case permanent(err):
			return true, err
		}
		cfg.Logger.Info("ssh not ready, retrying", "target", target, "attempt", attempts, "error", err.Error())
		return false, err
	})
	if err != nil {
		return nil, fmt.Errorf("ssh dial %s: %w", target, err)
	}
	cfg.Logger.Info("ssh connected", "target", target, "attempts", attempts, "elapsed", time.Since(start).Round(time.Millisecond))
	return runner, nil
}

// Reconnect closes r and makes one new connection with the same configuration: no retries, so
// a caller that polls (for a group membership a new login gets, say) keeps the one retry loop.
func (r *Runner) Reconnect(ctx context.Context) (*Runner, error) {
	r.Close()
	client, err := dialOnce(ctx, r.cfg)
	if err != nil {
		return nil, fmt.Errorf("ssh reconnect %s@%s: %w", r.cfg.User, r.cfg.Addr, err)
	}
	return newRunner(client, r.cfg), nil
}

func (c Config) check() error {
	if c.Addr == "" || c.User == "" || c.Signer == nil || c.HostKey == nil {
		return errors.New("ssh dial: Addr, User, Signer and HostKey are required")
	}
	return nil
}

// permanent reports the failures retrying cannot fix: the wrong host, or a refused key.
func permanent(err error) bool {
	var mismatch *HostKeyMismatchError
	return errors.As(err, &mismatch) || errors.Is(err, ErrAuthRejected)
}

// Retryable reports whether a Dial or Reconnect error may go away with time (the host is still
// booting, the network dropped a connection). A *HostKeyMismatchError or ErrAuthRejected never do.
func Retryable(err error) bool { return err != nil && !permanent(err) }

// handshake records how far one handshake got, so its failure can be told apart by what
// happened rather than by its text: a failure after the server proved the pinned host key and
// was offered the client key, which is not the network giving way, is the key being refused.
type handshake struct {
	hostKeyAccepted atomic.Bool
	keyOffered      atomic.Bool
}

// dialOnce makes one TCP connection and SSH handshake, bounded by cfg.AttemptTimeout and ctx.
// Its errors are a *HostKeyMismatchError, ErrAuthRejected, or anything else (transient).
func dialOnce(ctx context.Context, cfg Config) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.AttemptTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	// The handshake has no context of its own: a deadline on the socket bounds it, and closing
	// the socket when ctx ends covers cancellation.
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	var h handshake
	pinned := pinnedHostKey(cfg.Addr, cfg.HostKey)
	c, chans, reqs, err := ssh.NewClientConn(conn, cfg.Addr, &ssh.ClientConfig{
		User: cfg.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			h.keyOffered.Store(true)
			return []ssh.Signer{cfg.Signer}, nil
		})},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if err := pinned(hostname, remote, key); err != nil {
				return err
			}
			h.hostKeyAccepted.Store(true)
			return nil
		},
		HostKeyAlgorithms: hostKeyAlgorithms(cfg.HostKey),
	})
	if !stop() || err != nil {
		conn.Close()
		switch {
		case err == nil:
			return nil, ctx.Err()
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%w: %w", err, ctx.Err())
		case h.hostKeyAccepted.Load() && h.keyOffered.Load() && !networkError(err):
			return nil, fmt.Errorf("%w: %w", ErrAuthRejected, err)
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// networkError reports a failure of the connection itself (refused, reset, closed, timed out,
// cut short): what a host that is still booting, or a flaky path, produces.
func networkError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrDeadlineExceeded)
}

// pinnedHostKey accepts exactly the pinned key (ssh.FixedHostKey) and turns a refusal into a typed error.
func pinnedHostKey(addr string, pinned ssh.PublicKey) ssh.HostKeyCallback {
	fixed := ssh.FixedHostKey(pinned)
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if err := fixed(hostname, remote, key); err != nil {
			return &HostKeyMismatchError{Addr: addr, Pinned: ssh.FingerprintSHA256(pinned), Presented: ssh.FingerprintSHA256(key)}
		}
		return nil
	}
}

// hostKeyAlgorithms asks the server for the pinned key's type: a server holding several host keys
// would otherwise present whichever it prefers, and a correct host would look like a mismatch.
func hostKeyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{k.Type()}
}
