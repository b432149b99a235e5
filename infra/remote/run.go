package remote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// RunOption adjusts one Run.
type RunOption func(*runOptions)

type runOptions struct {
	stdin   *string
	timeout time.Duration
}

// WithSecretStdin feeds secret to each step's stdin (docker login --password-stdin) and replaces
// it with [REDACTED] wherever the command's output, errors or logs would show it.
func WithSecretStdin(secret string) RunOption {
	return func(o *runOptions) { o.stdin = &secret }
}

// WithTimeout bounds the whole command; on expiry the remote process is signalled and the error
// says "timed out".
func WithTimeout(d time.Duration) RunOption {
	return func(o *runOptions) { o.timeout = d }
}

// Run executes cmd's steps in order and returns their stdout. A step that exits non-zero yields an
// *ExitError naming the command and carrying the tail of its stderr. When ctx ends (or the
// WithTimeout bound), the remote command's process group gets SIGTERM, then SIGKILL after
// Config.KillGrace, the session is closed, and the error says "timed out" or "interrupted".
func (r *Runner) Run(ctx context.Context, cmd Command, opts ...RunOption) ([]byte, error) {
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	if len(cmd.steps) == 0 {
		return nil, errors.New("run: empty command")
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	var secrets []string
	if o.stdin != nil && *o.stdin != "" {
		secrets = append(secrets, *o.stdin)
	}
	var stdout []byte
	shown := cmd.shownSteps()
	for i, argv := range cmd.steps {
		start := time.Now()
		out, err := r.runStep(ctx, argv, step{stdin: o.stdin, secrets: secrets, stopOnCancel: true, shown: shown[i]})
		r.log.Debug("ssh run", "addr", r.cfg.Addr, "command", redact(shown[i], secrets), "elapsed", time.Since(start).Round(time.Millisecond), "ok", err == nil)
		stdout = append(stdout, out...)
		if err != nil {
			return stdout, err
		}
	}
	return stdout, nil
}

type started struct {
	sess *ssh.Session
	err  error
}

// stepPrefix makes the remote shell print its pid before exec'ing the command. sshd puts every
// session in a new session and process group (setsid), so that pid names the command's whole
// process group: a timeout can kill it even where sshd refuses "signal" requests (it does for
// root logins, which have no privilege-separated child).
const stepPrefix = "echo $$; exec "

const killTimeout = 10 * time.Second

// step is how one argv runs.
type step struct {
	stdin        *string
	secrets      []string
	stopOnCancel bool   // signal the process group when ctx ends (not for the kill command itself)
	shown        string // how errors name the step; "" means Join(argv)
}

func (r *Runner) runStep(ctx context.Context, argv []string, o step) ([]byte, error) {
	stdin, secrets := o.stdin, o.secrets
	name := redact(cmp.Or(o.shown, Join(argv)), secrets) // argv should never hold a secret; if it does, errors still won't show it
	line := stepPrefix + Join(argv)
	if strings.ContainsRune(line, 0) {
		return nil, fmt.Errorf("%s: argv contains a NUL byte", name)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stdout := &capBuffer{limit: 8 << 20}
	stderr := &capBuffer{limit: 64 << 10, keepTail: true}
	pid := &pidWriter{next: stdout, pid: make(chan int, 1)}
	start := time.Now()

	// Opening a session waits for the server, which a dead connection never answers until the
	// keepalive gives up: open it in the background so ctx is honoured meanwhile.
	opened := make(chan started, 1)
	go func() {
		sess, err := r.client.NewSession()
		if err == nil {
			sess.Stdout, sess.Stderr = pid, stderr
			if stdin != nil {
				sess.Stdin = strings.NewReader(*stdin)
			}
			if err = sess.Start(line); err != nil {
				sess.Close()
			}
		}
		opened <- started{sess, err}
	}()
	var sess *ssh.Session
	select {
	case s := <-opened:
		if s.err != nil {
			if cerr := r.Err(); cerr != nil {
				return nil, fmt.Errorf("%s: start: %w", name, cerr)
			}
			return nil, fmt.Errorf("%s: start: %w", name, s.err)
		}
		sess = s.sess
	case <-ctx.Done():
		go func() {
			if s := <-opened; s.err == nil && o.stopOnCancel {
				r.stop(s.sess, waitSession(s.sess), pid.pid)
			} else if s.err == nil {
				s.sess.Close()
			}
		}()
		return nil, r.ctxError(ctx, name, start, "while starting (remote process being stopped)", "", secrets)
	}
	exited := waitSession(sess)
	select {
	case err := <-exited:
		sess.Close()
		out := []byte(redact(string(stdout.Bytes()), secrets))
		if stdout.truncated {
			return out, fmt.Errorf("%s: stdout larger than %d bytes", name, stdout.limit)
		}
		return out, r.exitError(name, err, stderr, secrets)
	case <-ctx.Done():
		fate := "session closed"
		if o.stopOnCancel {
			fate = "remote process stopped"
			if !r.stop(sess, exited, pid.pid) {
				fate = "remote process did not exit after SIGKILL"
			}
		}
		sess.Close()
		return nil, r.ctxError(ctx, name, start, fate, tail(stderr, secrets), secrets)
	}
}

func waitSession(sess *ssh.Session) <-chan error {
	exited := make(chan error, 1)
	go func() { exited <- sess.Wait() }()
	return exited
}

// stop ends a command whose context is done: SIGTERM to its process group, SIGKILL after
// KillGrace, then the session is closed. Signals go both in-band (the SSH "signal" request) and
// through kill(1) in a second session, because sshd honours the former only for non-root users.
// It reports whether the command exited.
func (r *Runner) stop(sess *ssh.Session, exited <-chan error, pids <-chan int) (exitedInTime bool) {
	defer sess.Close()
	pid := 0
	select {
	case pid = <-pids:
	case <-exited:
		return true
	case <-time.After(killTimeout): // a slow login shell delays the pid line; past this, in-band signals only
	}
	for _, sig := range []ssh.Signal{ssh.SIGTERM, ssh.SIGKILL} {
		_ = sess.Signal(sig)
		if pid > 1 {
			r.killGroup(pid, sig)
		}
		select {
		case <-exited:
			return true
		case <-r.done:
			return false
		case <-time.After(r.cfg.KillGrace):
		}
	}
	return false
}

// killGroup signals a process group through kill(1) in a session of its own. It gets its own
// bound, not KillGrace: a login shell with slow rc files can take longer than the grace to start.
func (r *Runner) killGroup(pid int, sig ssh.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	argv := []string{"kill", "-s", string(sig), "--", "-" + strconv.Itoa(pid)}
	if _, err := r.runStep(ctx, argv, step{}); err != nil {
		r.log.Debug("ssh kill", "addr", r.cfg.Addr, "pid", pid, "signal", string(sig), "error", err.Error())
	}
}
