package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlagsFromTheEnvironment(t *testing.T) {
	parseDrill := func(args ...string) (drillOptions, error) {
		var d drillOptions
		f := newFlags("drill", "", io.Discard)
		d.register(f)
		return d, f.parse(args)
	}

	t.Run("a well-formed value sets the flag", func(t *testing.T) {
		t.Setenv("DRILL_LIVE_WINDOW", "5s")
		d, err := parseDrill()
		if err != nil || d.cfg.Windows.Live != 5*time.Second {
			t.Fatalf("live = %s, %v; want 5s", d.cfg.Windows.Live, err)
		}
	})
	t.Run("the command line wins over the environment", func(t *testing.T) {
		t.Setenv("DRILL_LIVE_WINDOW", "5s")
		d, err := parseDrill("--live", "7s")
		if err != nil || d.cfg.Windows.Live != 7*time.Second {
			t.Fatalf("live = %s, %v; want 7s", d.cfg.Windows.Live, err)
		}
	})
	t.Run("a malformed value is a usage error, not the default", func(t *testing.T) {
		t.Setenv("DRILL_LIVE_WINDOW", "5min")
		t.Setenv("DRILL_AUTO_ROLLBACK", "sure")
		_, err := parseDrill()
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "DRILL_LIVE_WINDOW") || !strings.Contains(err.Error(), "DRILL_AUTO_ROLLBACK") {
			t.Fatalf("err = %v, want a usage error naming both variables", err)
		}
	})
}
