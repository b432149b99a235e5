package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// flagHelp is returned when --help was asked for: not an error for the exit status.
var flagHelp = flag.ErrHelp

// newFlagSet makes a FlagSet whose usage names the command and says which env var sets what.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./ci %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and refuses positional leftovers. Then every flag not given on the command
// line is set from the environment variable its usage names ("(env NAME)"), through the flag's
// own parser: a malformed value such as DRILL_LIVE_WINDOW=5min is an error, never a silent
// fall back to the default.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flagHelp
		}
		return fmt.Errorf("%s: %w", err.Error(), errUsage)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q: %w", fs.Arg(0), errUsage)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		m := envInUsage.FindStringSubmatch(f.Usage)
		if m == nil || given[f.Name] {
			return
		}
		if value, ok := os.LookupEnv(m[1]); ok && value != "" {
			if err := fs.Set(f.Name, value); err != nil {
				errs = append(errs, fmt.Errorf("env %s=%q (for --%s): %v", m[1], value, f.Name, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", errors.Join(errs...), errUsage)
	}
	return nil
}

var envInUsage = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)\)`)

func envString(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envBool(name string, fallback bool) bool {
	if v, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return v
	}
	return fallback
}

func envInt(name string, fallback int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return fallback
}

func envDuration(name string, fallback time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return fallback
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
