// Package wait is the tool's one retry loop: a poll with a first wait, a cap it doubles up to
// and a deadline, ending with an error that says what it waited for, how long and how often,
// and whether it timed out or was interrupted. infra/ec2, infra/remote and the AWS target use
// it; nothing else sleeps to wait.
package wait

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// Poll bounds a retry loop: the first wait, the cap it doubles up to, and the deadline.
// Timeout <= 0 means the caller's context alone bounds it.
type Poll struct {
	Initial, Max, Timeout time.Duration
}

// Run calls try until it reports done, ctx ends or the deadline passes. try returns done=true
// with an error for failures that retrying cannot fix. what names the wait in errors
// ("ssh on 192.0.2.1:22"). An error ending the wait wraps context.DeadlineExceeded or
// context.Canceled and, when there was one, the last attempt's error.
func (p Poll) Run(ctx context.Context, what string, try func(context.Context) (done bool, err error)) error {
	bounded, cancel := ctx, context.CancelFunc(func() {})
	if p.Timeout > 0 {
		bounded, cancel = context.WithTimeout(ctx, p.Timeout)
	}
	defer cancel()
	start := time.Now()
	wait := max(p.Initial, time.Millisecond)
	var last error
	deadline, bounds := bounded.Deadline()
	over := func() bool { return bounded.Err() != nil || (bounds && !time.Now().Before(deadline)) }
	for attempt := 1; ; attempt++ {
		done, err := try(bounded)
		// (An attempt bounded by a socket deadline can fail a moment before the context's timer fires.)
		if over() && (err != nil || !done) {
			// An attempt cut short by the deadline says nothing useful; report the wait.
			return p.expired(ctx, what, start, attempt, cmp.Or(last, err))
		}
		if done {
			return err
		}
		last = err
		timer := time.NewTimer(wait)
		select {
		case <-bounded.Done():
			timer.Stop()
			return p.expired(ctx, what, start, attempt, last)
		case <-timer.C:
		}
		wait = min(wait*2, max(p.Max, p.Initial))
	}
}

// expired words the end of a wait: interrupted (the caller cancelled), or timed out (the
// caller's deadline or the poll's own passed).
func (p Poll) expired(ctx context.Context, what string, start time.Time, attempts int, last error) error {
	cause := error(context.DeadlineExceeded)
	verb, took := "timed out", time.Since(start).Round(time.Millisecond)
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		verb, cause = "interrupted", ctx.Err()
	case ctx.Err() == nil && p.Timeout > 0:
		took = p.Timeout // the poll's own deadline: say the bound, not the measured time
	}
	if last == nil || errors.Is(last, cause) {
		return fmt.Errorf("%s after %s waiting for %s (%d attempts): %w", verb, took, what, attempts, cause)
	}
	return fmt.Errorf("%s after %s waiting for %s (%d attempts): %w: last attempt: %w", verb, took, what, attempts, cause, last)
}
