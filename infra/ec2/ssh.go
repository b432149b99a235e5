package ec2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrHostKeyMismatch means the server presented a host key other than the pinned one: not the
// host this run launched. Callers abort (and tear down) rather than retry.
var ErrHostKeyMismatch = errors.New("host key mismatch")

// PinnedHostKey accepts exactly want, like ssh.FixedHostKey, with an error that names both
// fingerprints and wraps ErrHostKeyMismatch.
func PinnedHostKey(want ssh.PublicKey) ssh.HostKeyCallback {
	return func(hostname string, _ net.Addr, got ssh.PublicKey) error {
		if bytes.Equal(got.Marshal(), want.Marshal()) {
			return nil
		}
		return fmt.Errorf("ssh %s: %w: pinned %s, presented %s (security: this is not the host the run launched)",
			hostname, ErrHostKeyMismatch, ssh.FingerprintSHA256(want), ssh.FingerprintSHA256(got))
	}
}

// DialSSH connects once SSH is ready: TCP connects and the handshake proves the pinned host key
// and the run's client key. Refused connections, timeouts and failed logins during boot are
// retried with backoff until poll's deadline; a host key mismatch is returned at once.
func DialSSH(ctx context.Context, addr string, cfg *ssh.ClientConfig, poll Poll) (*ssh.Client, error) {
	var client *ssh.Client
	err := poll.Run(ctx, "ssh on "+addr, func(ctx context.Context) (bool, error) {
		c, err := dialOnce(ctx, addr, cfg)
		if err == nil {
			client = c
			return true, nil
		}
		return errors.Is(err, ErrHostKeyMismatch), err
	})
	return client, err
}

// WaitSSH waits until addr answers SSH as DialSSH does, then closes the connection.
func WaitSSH(ctx context.Context, addr string, cfg *ssh.ClientConfig, poll Poll) error {
	c, err := DialSSH(ctx, addr, cfg, poll)
	if err != nil {
		return err
	}
	return c.Close()
}

func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The handshake has no context of its own: bound it by the same deadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil && !errors.Is(err, ErrHostKeyMismatch) {
			return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
		}
		return nil, err
	}
	if !stop() {
		c.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	return ssh.NewClient(c, chans, reqs), nil
}
