package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// flagHelp is returned when --help was asked for: not an error for the exit status.
var flagHelp = flag.ErrHelp

// flags declares each option once: its flag, its environment variable and its help text. The
// command line wins; a flag not given is then set from its variable through the flag's own
// parser, so a malformed value such as DRILL_LIVE_WINDOW=5min is a usage error, never a silent
// fall back to the default.
type flags struct {
	fs    *flag.FlagSet
	env   map[string]string // flag name → environment variable
	given map[string]bool   // set on the command line, not from the environment
}

func newFlags(name, summary string, stderr io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./ci %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return &flags{fs: fs, env: map[string]string{}}
}

// declare records an option's environment variable and returns its help text with the
// variable named; env "" means it has none.
func (f *flags) declare(name, env, usage string) string {
	if env == "" {
		return usage
	}
	f.env[name] = env
	return usage + " (env " + env + ")"
}

func (f *flags) String(p *string, name, env, value, usage string) {
	f.fs.StringVar(p, name, value, f.declare(name, env, usage))
}

func (f *flags) Bool(p *bool, name, env string, value bool, usage string) {
	f.fs.BoolVar(p, name, value, f.declare(name, env, usage))
}

func (f *flags) Int(p *int, name, env string, value int, usage string) {
	f.fs.IntVar(p, name, value, f.declare(name, env, usage))
}

func (f *flags) Float(p *float64, name, env string, value float64, usage string) {
	f.fs.Float64Var(p, name, value, f.declare(name, env, usage))
}

func (f *flags) Duration(p *time.Duration, name, env string, value time.Duration, usage string) {
	f.fs.DurationVar(p, name, value, f.declare(name, env, usage))
}

// parse parses args, refuses positional leftovers, then applies the environment.
func (f *flags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flagHelp
		}
		return fmt.Errorf("%s: %w", err.Error(), errUsage)
	}
	if f.fs.NArg() > 0 {
		f.fs.Usage()
		return fmt.Errorf("unexpected argument %q: %w", f.fs.Arg(0), errUsage)
	}
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	f.given = given
	var errs []error
	f.fs.VisitAll(func(fl *flag.Flag) {
		env, ok := f.env[fl.Name]
		if !ok || given[fl.Name] {
			return
		}
		if value, ok := os.LookupEnv(env); ok && value != "" {
			if err := f.fs.Set(fl.Name, value); err != nil {
				errs = append(errs, fmt.Errorf("env %s=%q (for --%s): %v", env, value, fl.Name, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", errors.Join(errs...), errUsage)
	}
	return nil
}

// onCommandLine reports whether the command line set name, rather than its variable.
func (f *flags) onCommandLine(name string) bool { return f.given[name] }

// usageError marks a value the flag parser accepted but the command cannot use (exit 2).
func usageError(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errUsage)
}

// defaultCacheDir is where images, binaries and state live between runs: never in the repo.
func defaultCacheDir() string {
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" {
		return filepath.Join(dir, "deploydrill")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "deploydrill")
	}
	return filepath.Join(os.TempDir(), "deploydrill-cache")
}
