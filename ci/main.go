// Command ci runs ephemeral deploy drills: build, test and publish the app with Dagger, deploy it
// to a throwaway target, take it down on purpose, roll back to a known-good version, tear
// everything down, and report how fast the outage was detected and recovered.
//
//	go run ./ci [drill] [flags]   the whole drill (default)
//	go run ./ci build|test|publish|images|history|sweep|iam [flags]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/deploydrill/deploydrill/infra/teardown"
)

// command is one subcommand. run parses its own flags from args.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		drillCommand(),
		buildCommand(),
		testCommand(),
		publishCommand(),
		imagesCommand(),
		historyCommand(),
		sweepCommand(),
		iamCommand(),
	}
}

// errUsage marks a command-line mistake (exit status 2); flag's own errors are reported already.
var errUsage = errors.New("usage")

func main() {
	ctx, interrupts := withInterrupts(context.Background(), os.Stderr)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	interrupts()
	os.Exit(exitStatus(ctx, err, os.Stderr))
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	all := commands()
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		usage(stderr, all)
		return nil
	}
	cmd := all[0] // the drill
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		found := false
		for _, c := range all {
			if c.name == args[0] {
				cmd, found = c, true
			}
		}
		if !found {
			usage(stderr, all)
			return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
		}
		args = args[1:]
	}
	return cmd.run(ctx, args, stdout, stderr)
}

func usage(w io.Writer, all []command) {
	fmt.Fprintf(w, "usage: go run ./ci [command] [flags]\n\ncommands:\n")
	for _, c := range all {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nWithout a command, runs the drill. `go run ./ci COMMAND --help` explains its flags.\n")
}

// withInterrupts cancels the run's context on the first SIGINT/SIGTERM, so the command stops
// and tears down. A second signal cancels the teardown too (teardown code then says what may be
// left behind); a third exits at once.
func withInterrupts(parent context.Context, stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	teardownParent, abortTeardown := context.WithCancelCause(context.WithoutCancel(parent))
	ctx = context.WithValue(ctx, teardownKey{}, teardownParent)
	signals := make(chan os.Signal, 3)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	log := newLogger(stderr, false).With("phase", "signal")
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case s := <-signals:
				switch n {
				case 1:
					log.Info(fmt.Sprintf("received %s: stopping and tearing down (again to abort the teardown)", s))
					cancel(errInterrupted)
				case 2:
					log.Info(fmt.Sprintf("received %s again: aborting the teardown", s))
					abortTeardown(errTeardownAborted)
				default:
					os.Exit(130)
				}
			case <-done:
				return
			}
		}
	}()
	return ctx, func() { close(done); signal.Stop(signals); cancel(nil); abortTeardown(nil) }
}

var (
	errInterrupted     = errors.New("interrupted")
	errTeardownAborted = errors.New("teardown aborted by a second interrupt")
)

type teardownKey struct{}

// teardownContext is a fresh context for teardown: it survives the run's cancellation, ends at
// its own deadline, and ends early only on a second interrupt.
func teardownContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if parent, ok := ctx.Value(teardownKey{}).(context.Context); ok {
		return context.WithTimeout(parent, timeout)
	}
	return teardown.FreshContext(ctx, timeout)
}

func exitStatus(ctx context.Context, err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flagHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "error:", err)
		return 2
	case errors.Is(context.Cause(ctx), errInterrupted):
		fmt.Fprintln(stderr, "interrupted:", err)
		return 130
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintln(stderr, "timed out:", err)
		return 1
	default:
		fmt.Fprintln(stderr, "failed:", err)
		return 1
	}
}
