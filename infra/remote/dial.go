package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
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

// Dial connects to cfg.Addr, retrying with backoff while the host refuses or drops connections (as
// it does for the first seconds of boot), and returns a Runner that reuses the connection for every
// command. A host key mismatch or a rejected key ends the retries at once.
func Dial(ctx context.Context, cfg Config) (*Runner, error) {
	if cfg.Addr == "" || cfg.User == "" || cfg.Signer == nil || cfg.HostKey == nil {
		return nil, errors.New("ssh dial: Addr, User, Signer and HostKey are required")
	}
	cfg = cfg.withDefaults()
	target := cfg.User + "@" + cfg.Addr
	ctx, cancel := context.WithTimeout(ctx, cfg.RetryFor)
	defer cancel()

	start := time.Now()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		client, err := dialOnce(ctx, cfg)
		if err == nil {
			cfg.Logger.Info("ssh connected", "target", target, "attempts", attempt, "elapsed", time.Since(start).Round(time.Millisecond))
			return newRunner(client, cfg), nil
		}
		if mismatch := (*HostKeyMismatchError)(nil); errors.As(err, &mismatch) {
			return nil, fmt.Errorf("ssh dial %s: %w", target, mismatch)
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("ssh dial %s: %w: %w", target, ErrAuthRejected, err)
		}
		wait := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			wait.Stop()
			verb := "timed out"
			if errors.Is(ctx.Err(), context.Canceled) {
				verb = "interrupted"
			}
			return nil, fmt.Errorf("ssh dial %s: %s after %s and %d attempts: %w (last error: %w)",
				target, verb, time.Since(start).Round(time.Millisecond), attempt, ctx.Err(), err)
		case <-wait.C:
		}
		cfg.Logger.Info("ssh not ready, retrying", "target", target, "attempt", attempt, "error", err.Error())
		backoff = min(backoff*2, 2*time.Second)
	}
}

// dialOnce makes one TCP connection and SSH handshake, bounded by cfg.AttemptTimeout and ctx.
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
	c, chans, reqs, err := ssh.NewClientConn(conn, cfg.Addr, &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(cfg.Signer)},
		HostKeyCallback:   pinnedHostKey(cfg.Addr, cfg.HostKey),
		HostKeyAlgorithms: hostKeyAlgorithms(cfg.HostKey),
	})
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
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
