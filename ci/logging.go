package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The one progress path: every package logs through a *slog.Logger, and this handler prints
// each record to stderr as "15:04:05.000 phase     message key=value ...". The phase is the
// record's "phase" attribute (loggers get it with .With("phase", ...)).

// newLogger returns a logger writing progress lines to w; debug records only when verbose.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(&lineHandler{out: &lockedWriter{w: w}, level: level})
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(p)
}

type lineHandler struct {
	out    *lockedWriter
	level  slog.Level
	phase  string
	attrs  []slog.Attr // pre-formatted by WithAttrs, without the phase
	groups string
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	phase := h.phase
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) {
		if a.Key == "phase" && h.groups == "" {
			phase = a.Value.String()
			return
		}
		if a.Equal(slog.Attr{}) {
			return
		}
		fmt.Fprintf(&b, " %s%s=%s", h.groups, a.Key, quoteIfNeeded(a.Value.Resolve()))
	}
	for _, a := range h.attrs { // keys already carry their groups
		fmt.Fprintf(&b, " %s=%s", a.Key, quoteIfNeeded(a.Value.Resolve()))
	}
	r.Attrs(func(a slog.Attr) bool { write(a); return true })
	at := r.Time
	if at.IsZero() {
		at = time.Now()
	}
	h.out.write([]byte(fmt.Sprintf("%s %-9s %s\n", at.Format("15:04:05.000"), phase, b.String())))
	return nil
}

func quoteIfNeeded(v slog.Value) string {
	s := v.String()
	if v.Kind() == slog.KindDuration {
		s = v.Duration().Round(time.Millisecond).String()
	}
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if a.Key == "phase" && h.groups == "" {
			c.phase = a.Value.String()
			continue
		}
		c.attrs = append(c.attrs, slog.Attr{Key: h.groups + a.Key, Value: a.Value})
	}
	return &c
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups += name + "."
	return &c
}
