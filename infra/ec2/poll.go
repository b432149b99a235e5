package ec2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Poll bounds a retry loop: the first wait, the cap it doubles up to, and the deadline.
type Poll struct {
	Initial, Max, Timeout time.Duration
}

// Run calls try until it reports done, ctx ends or the deadline passes. try returns done=true
// with an error for failures that retrying cannot fix. what names the wait in errors.
func (p Poll) Run(ctx context.Context, what string, try func(context.Context) (done bool, err error)) error {
	deadline, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	wait := p.Initial
	var last error
	for attempt := 1; ; attempt++ {
		done, err := try(deadline)
		if deadline.Err() != nil && (err != nil || !done) {
			// An attempt cut short by the deadline says nothing useful; report the wait.
			return p.expired(ctx, what, attempt, cmp.Or(last, err))
		}
		if done {
			return err
		}
		last = err
		timer := time.NewTimer(wait)
		select {
		case <-deadline.Done():
			timer.Stop()
			return p.expired(ctx, what, attempt, last)
		case <-timer.C:
		}
		wait = min(wait*2, p.Max)
	}
}

// expired words the end of a wait: the caller's context ended, or the poll's deadline passed.
func (p Poll) expired(ctx context.Context, what string, attempts int, last error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", what, errors.Join(context.Cause(ctx), last))
	case last == nil:
		return fmt.Errorf("timed out after %s waiting for %s (%d attempts): %w", p.Timeout, what, attempts, context.DeadlineExceeded)
	}
	return fmt.Errorf("timed out after %s waiting for %s (%d attempts): %w: last attempt: %w", p.Timeout, what, attempts, context.DeadlineExceeded, last)
}

// errorCode is the AWS error code inside err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// answered reports whether AWS refused the request (a 4xx answer), so it created nothing.
// Transport errors, cancellations and 5xx answers leave the outcome unknown.
func answered(err error) bool {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil {
		return false
	}
	return re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
}
