package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoggerPrintsOneLinePerRecord(t *testing.T) {
	var b strings.Builder
	log := newLogger(&b, false)
	rec := slog.NewRecord(time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC), slog.LevelInfo, "first failed probe", 0)
	rec.AddAttrs(slog.String("phase", "outage"))
	log.Handler().Handle(context.Background(), rec)
	log.With("phase", "teardown").Info("delete key pair", "name", "deploydrill-r1", "took", 1234567*time.Microsecond)
	log.Info("no phase", "why", "two words")
	log.Debug("hidden unless verbose", "phase", "aws")
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), b.String())
	}
	if want := "03:04:05.006 outage    first failed probe"; lines[0] != want {
		t.Errorf("line 1 %q, want %q", lines[0], want)
	}
	if want := " teardown  delete key pair name=deploydrill-r1 took=1.235s"; !strings.HasSuffix(lines[1], want) {
		t.Errorf("line 2 %q, want it to end %q", lines[1], want)
	}
	if want := `no phase why="two words"`; !strings.HasSuffix(lines[2], want) {
		t.Errorf("line 3 %q, want it to end %q", lines[2], want)
	}
}
