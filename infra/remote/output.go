package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// This file is what comes back from a remote command: stdout (after the pid line), stderr's tail,
// secrets redacted, and the errors Run returns.

// pidWriter takes the first line of stdout (the pid stepPrefix prints) and passes the rest on.
type pidWriter struct {
	next  io.Writer
	pid   chan int
	line  []byte
	found bool
}

func (p *pidWriter) Write(b []byte) (int, error) {
	n := len(b)
	if !p.found {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.line = append(p.line, b...)
			return n, nil
		}
		p.line, b, p.found = append(p.line, b[:i]...), b[i+1:], true
		if pid, err := strconv.Atoi(string(p.line)); err == nil {
			p.pid <- pid
		} else if _, err := p.next.Write(append(p.line, '\n')); err != nil {
			return 0, err // not a pid (a chatty login shell?): keep it as output
		}
	}
	if _, err := p.next.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}

// ctxError says the command timed out or was interrupted, and what became of the remote process.
func (r *Runner) ctxError(ctx context.Context, name string, start time.Time, fate, stderr string, secrets []string) error {
	verb := "timed out"
	if errors.Is(ctx.Err(), context.Canceled) {
		verb = "interrupted"
	}
	msg := fmt.Sprintf("%s: %s after %s, %s", name, verb, time.Since(start).Round(time.Millisecond), fate)
	if stderr != "" {
		msg += ": " + stderr
	}
	return fmt.Errorf("%s: %w", redact(msg, secrets), ctx.Err())
}

func (r *Runner) exitError(name string, err error, stderr *capBuffer, secrets []string) error {
	if err == nil {
		return nil
	}
	e := &ExitError{Command: name, Status: -1, Stderr: tail(stderr, secrets)}
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(err, &exit):
		e.Status, e.Signal = exit.ExitStatus(), exit.Signal()
	case errors.As(err, &missing):
	default:
		if cerr := r.Err(); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("%s: %s", name, redact(err.Error(), secrets))
	}
	return e
}

// ExitError is a remote command that ran and failed.
type ExitError struct {
	Command string // the argv as typed (never holds a secret)
	Status  int    // exit status; -1 when the server sent none
	Signal  string // e.g. "KILL" when a signal ended it
	Stderr  string // last part of stderr, secrets redacted
}

func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString(e.Command)
	switch {
	case e.Signal != "":
		fmt.Fprintf(&b, ": killed by signal %s", e.Signal)
	case e.Status < 0:
		b.WriteString(": ended without an exit status")
	default:
		fmt.Fprintf(&b, ": exit %d", e.Status)
	}
	if e.Stderr != "" {
		b.WriteString(": " + e.Stderr)
	}
	return b.String()
}

const redacted = "[REDACTED]"

func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}

// tail returns the end of stderr, redacted, as one line (lines joined with "; "), at most ~1 KiB.
func tail(b *capBuffer, secrets []string) string {
	s := redact(string(b.Bytes()), secrets)
	const max = 1024
	if len(s) > max {
		s = "..." + strings.ToValidUTF8(s[len(s)-max:], "")
	}
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// capBuffer is a goroutine-safe buffer that keeps at most limit bytes: the head, or with keepTail
// the tail. Redaction runs on the whole kept text before any shortening for messages, so a cut can
// only split a secret at the far end of a long stream, never inside the tail a message shows.
type capBuffer struct {
	mu        sync.Mutex
	buf       []byte
	limit     int
	keepTail  bool
	truncated bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.truncated = true
		if b.keepTail {
			b.buf = b.buf[over:]
		} else {
			b.buf = b.buf[:b.limit]
		}
	}
	return len(p), nil
}

func (b *capBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf)
}

func orEOF(err error) error {
	if err == nil {
		return errors.New("EOF")
	}
	return err
}
