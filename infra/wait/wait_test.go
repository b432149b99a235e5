package wait_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/wait"
)

var fast = wait.Poll{Initial: time.Millisecond, Max: 2 * time.Millisecond, Timeout: 50 * time.Millisecond}

func TestPoll(t *testing.T) {
	errBusy := errors.New("busy")
	errFatal := errors.New("fatal")
	tests := []struct {
		name     string
		poll     wait.Poll
		try      func(n int) (bool, error)
		cancel   bool // cancel the caller's context after the first attempt
		wantErr  []error
		wantMsg  string
		attempts int // exact count, or 0 for "several"
	}{
		{"done at the third attempt", fast, func(n int) (bool, error) { return n == 3, errBusy }, false, nil, "", 3},
		{"an error retrying cannot fix ends it at once", fast, func(int) (bool, error) { return true, errFatal }, false,
			[]error{errFatal}, "fatal", 1},
		{"the deadline names the wait and the last error", fast, func(int) (bool, error) { return false, errBusy }, false,
			[]error{context.DeadlineExceeded, errBusy}, "timed out after 50ms waiting for the thing", 0},
		{"a cancelled caller says interrupted", wait.Poll{Initial: time.Hour, Max: time.Hour, Timeout: time.Hour},
			func(int) (bool, error) { return false, errBusy }, true,
			[]error{context.Canceled, errBusy}, "interrupted after", 1},
		{"no timeout of its own leaves the bound to the caller", wait.Poll{Initial: time.Millisecond, Max: time.Millisecond},
			func(n int) (bool, error) { return n == 5, nil }, false, nil, "", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			n := 0
			err := tt.poll.Run(ctx, "the thing", func(context.Context) (bool, error) {
				n++
				if tt.cancel {
					cancel()
				}
				done, err := tt.try(n)
				if done && err == errBusy {
					err = nil
				}
				return done, err
			})
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want it to wrap %v", err, want)
				}
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("err = %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to say %q", err, tt.wantMsg)
			}
			if tt.attempts > 0 && n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
		})
	}
}
