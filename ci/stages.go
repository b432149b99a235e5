package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
)

// state is what a command's stages share; it carries the command's logger.
type state interface{ logger() *slog.Logger }

// stage is one step of a command, in the order the command lists them. Every command runs its
// table through runStages, so each stage is logged, timed and worded the same way.
type stage[S state] struct {
	name string
	// run is usually a method expression, (*drillRun).publish, so the table reads as a list.
	run func(s S, ctx context.Context) error
	// skip, when it returns a reason, skips the stage (logged with the reason).
	skip func(s S) string
	// always: the stage runs even after an earlier one failed or the run was interrupted
	// (teardown, report). Its run makes its own context when it needs one.
	always bool
}

// runStages is the one run loop: it logs each stage's start, duration and outcome, skips the
// rest after the first failure except the stages marked always, and returns every failure,
// each prefixed with its stage's name, the first first.
func runStages[S state](ctx context.Context, s S, stages []stage[S]) error {
	log := s.logger()
	var errs []error
	for _, st := range stages {
		failed := len(errs) > 0
		if !st.always && (failed || ctx.Err() != nil) {
			if !failed {
				errs = append(errs, fmt.Errorf("%s: %w", st.name, context.Cause(ctx)))
			}
			continue
		}
		if st.skip != nil {
			if why := st.skip(s); why != "" {
				log.Debug("skipped: "+why, "phase", st.name)
				continue
			}
		}
		start := time.Now()
		log.Info("started", "phase", st.name)
		if err := st.run(s, ctx); err != nil {
			log.Info("failed after "+time.Since(start).Round(time.Millisecond).String(), "phase", st.name)
			err = fmt.Errorf("%s: %w", st.name, err)
			if f, ok := any(s).(interface{ stageFailed(error) }); ok {
				f.stageFailed(err)
			}
			errs = append(errs, err)
			continue
		}
		log.Info("done in "+time.Since(start).Round(time.Millisecond).String(), "phase", st.name)
	}
	return errors.Join(errs...)
}

// parallel is a stage that runs stage lists side by side; the first failure cancels the others.
func parallel[S state](name string, lists ...[]stage[S]) stage[S] {
	return stage[S]{name: name, run: func(s S, ctx context.Context) error {
		g, ctx := errgroup.WithContext(ctx)
		for _, list := range lists {
			g.Go(func() error { return runStages(ctx, s, list) })
		}
		return g.Wait()
	}}
}
