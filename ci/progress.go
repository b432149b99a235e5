package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// progress writes uniform progress lines to stderr: time, phase, message.
type progress struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, now: time.Now} }

func (p *progress) Printf(phase, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %-9s %s\n", p.now().Format("15:04:05.000"), phase, fmt.Sprintf(format, args...))
}

// stage is one step of a job, in the order the job lists them.
type stage struct {
	name string
	run  func(ctx context.Context) error
}

// runStages is the one run loop: it logs each stage's start, duration and outcome, and stops at
// the first failure.
func runStages(ctx context.Context, log *progress, stages []stage) error {
	for _, s := range stages {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", s.name, context.Cause(ctx))
		}
		start := log.now()
		log.Printf(s.name, "started")
		if err := s.run(ctx); err != nil {
			log.Printf(s.name, "failed after %s", log.now().Sub(start).Round(time.Millisecond))
			return fmt.Errorf("%s: %w", s.name, err)
		}
		log.Printf(s.name, "done in %s", log.now().Sub(start).Round(time.Millisecond))
	}
	return nil
}
