package remote

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Runner executes Commands over one SSH connection, one session per step. It is safe for
// concurrent use. Make one with Dial; Close it when done.
type Runner struct {
	client *ssh.Client
	cfg    Config
	log    *slog.Logger

	closeOnce sync.Once
	done      chan struct{}
	closeErr  error // why the connection ended; set before done is closed
}

func newRunner(client *ssh.Client, cfg Config) *Runner {
	r := &Runner{client: client, cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	go func() {
		err := client.Wait()
		r.fail(fmt.Errorf("ssh connection to %s ended: %w", cfg.Addr, orEOF(err)))
	}()
	go r.keepalive()
	return r
}

// Close ends the connection. Commands still running fail.
func (r *Runner) Close() error {
	r.fail(fmt.Errorf("ssh connection to %s closed by the client", r.cfg.Addr))
	return nil
}

// Done is closed once the connection has ended: Close, a failed keepalive, or the server going away.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Err says why the connection ended, or nil while it is open.
func (r *Runner) Err() error {
	select {
	case <-r.done:
		return r.closeErr
	default:
		return nil
	}
}

func (r *Runner) fail(err error) {
	r.closeOnce.Do(func() {
		r.closeErr = err
		close(r.done)
		r.client.Close()
	})
}

// keepalive sends keepalive@openssh.com every interval, one probe in flight at a time, and closes
// the connection when a probe fails or KeepaliveCountMax intervals pass without a reply. Any reply,
// even OpenSSH's "request failed" for an unknown request, proves the peer alive.
func (r *Runner) keepalive() {
	interval, countMax := r.cfg.KeepaliveInterval, r.cfg.KeepaliveCountMax
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var reply chan error // non-nil while a probe is in flight
	missed := 0
	for {
		select {
		case <-r.done:
			return
		case err := <-reply:
			if err != nil {
				r.log.Warn("ssh keepalive failed, closing", "addr", r.cfg.Addr, "error", err.Error())
				r.fail(fmt.Errorf("ssh connection to %s: keepalive failed: %w", r.cfg.Addr, err))
				return
			}
			reply, missed = nil, 0
		case <-tick.C:
			if reply != nil {
				if missed++; missed >= countMax {
					r.log.Warn("ssh keepalive unanswered, closing", "addr", r.cfg.Addr, "probes", missed)
					r.fail(fmt.Errorf("ssh connection to %s: no keepalive reply for %s (%d intervals of %s)",
						r.cfg.Addr, time.Duration(missed)*interval, missed, interval))
					return
				}
				continue
			}
			reply = make(chan error, 1)
			go func(reply chan<- error) {
				_, _, err := r.client.SendRequest("keepalive@openssh.com", true, nil)
				reply <- err
			}(reply)
		}
	}
}
