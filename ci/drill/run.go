package drill

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Run drives one drill: deploy V, live window, stop and outage window, rollback to K, recovery
// window, teardown. It returns a Result whenever the drill started, also alongside an error.
//
// The error reports what stopped the drill early (a target call failing, ctx ending) joined with
// any teardown error; an unmet expectation is not an error but a failed Expectation in the
// Result, and the drill carries on so the report shows every phase. The caller decides the exit
// status from Result.Passed. Teardown always runs, with Deps.TeardownContext.
func Run(ctx context.Context, cfg Config, deps Deps) (*Result, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	if deps.Target == nil || deps.Prober == nil {
		return nil, errors.New("drill: a target and a prober are required")
	}
	if deps.Clock == nil {
		deps.Clock = SystemClock{}
	}
	r := &run{
		cfg:   cfg,
		deps:  deps,
		clock: deps.Clock,
		mon:   newMonitor(deps.Clock, deps.Prober, cfg.Interval, cfg.ProbeTimeout),
		res:   &Result{Target: deps.Target.Name(), Config: cfg, V: cfg.Image},
	}
	for _, e := range expectationNames {
		r.res.Expectations = append(r.res.Expectations, Expectation{Phase: e.phase, Name: e.name, Status: NotRun})
	}
	runErr := r.drive(ctx)
	if runErr != nil {
		r.res.Error = runErr.Error()
		r.expect(r.phase, Failed, "%v", runErr)
	}
	r.mon.finish(ctx)
	r.res.Samples = r.mon.since(0)
	r.stopPreparing()
	teardownErr := r.teardown()
	r.res.Ended = r.clock.Now()
	r.res.Marks[len(r.res.Marks)-1].End = r.res.Ended
	return r.res, errors.Join(runErr, teardownErr)
}

type run struct {
	cfg   Config
	deps  Deps
	clock Clock
	mon   *monitor
	res   *Result
	phase Phase
	seen  int // samples the drill has looked at while waiting

	prepCancel context.CancelFunc
	prepDone   chan error
}

func (r *run) drive(ctx context.Context) error {
	v := r.cfg.Image
	r.enter(PhaseDeploy, v.Version)
	r.res.Started = r.res.Marks[0].Start
	if ctx.Err() != nil {
		return r.interrupted(ctx)
	}
	k, err := r.chooseK(ctx)
	if err != nil {
		return err
	}
	r.log("deploying V %s (%s)", v.Tag, v.Ref)
	if err := r.deps.Target.Deploy(ctx, v); err != nil {
		return fmt.Errorf("deploy %s: %w", v.Tag, err)
	}
	r.mon.setEndpoint(r.deps.Target.Endpoint())
	r.mon.start(ctx)
	if err := r.awaitHealthy(ctx, v, r.res.Marks[0].Start); err != nil {
		return err
	}

	r.enter(PhaseLive, v.Version)
	r.log("watching %s for %v", v.Tag, r.cfg.Windows.Live)
	r.startPreparing(ctx, k)
	if _, err := r.watch(ctx, r.cfg.Windows.Live, nil); err != nil {
		return err
	}
	if err := r.awaitPrepared(ctx); err != nil {
		return err
	}

	r.enter(PhaseStop, v.Version)
	r.mon.settle(ctx) // the live window's last probe counts, and Stop must not cut it short
	if ctx.Err() != nil {
		return r.interrupted(ctx)
	}
	if r.expectUp(PhaseLive, v) && r.passed(PhaseDeploy) {
		r.markVerified(ctx, v)
	}
	r.res.StopAt = r.clock.Now()
	r.log("stopping %s", v.Tag)
	if err := r.deps.Target.Stop(ctx); err != nil {
		return fmt.Errorf("stop %s: %w", v.Tag, err)
	}
	r.log("stopped after %s", r.clock.Now().Sub(r.res.StopAt).Round(time.Millisecond))

	r.enter(PhaseOutage, v.Version)
	if r.cfg.AutoRollback {
		r.log("watching for up to %v; the watchdog rolls back after %d consecutive failed probes", r.cfg.Windows.Outage, r.cfg.FailuresToRollback)
	} else {
		r.log("watching for %v", r.cfg.Windows.Outage)
	}
	if err := r.outage(ctx); err != nil {
		return err
	}

	r.enter(PhaseRollback, k.Version)
	r.mon.settle(ctx)
	if ctx.Err() != nil {
		return r.interrupted(ctx)
	}
	r.expectDown()
	r.res.RollbackAt = r.clock.Now()
	r.log("rolling back to K %s (%s)", k.Tag, k.Ref)
	if err := r.deps.Target.Deploy(ctx, k); err != nil {
		return fmt.Errorf("rollback: deploy %s: %w", k.Tag, err)
	}
	r.mon.setEndpoint(r.deps.Target.Endpoint())
	if err := r.awaitHealthy(ctx, k, r.res.RollbackAt); err != nil {
		return err
	}

	r.enter(PhaseRecovery, k.Version)
	r.log("watching %s for %v", k.Tag, r.cfg.Windows.Recovery)
	if _, err := r.watch(ctx, r.cfg.Windows.Recovery, nil); err != nil {
		return err
	}
	r.mon.finish(ctx)
	r.expectUp(PhaseRecovery, k)
	return nil
}

// chooseK picks and resolves the rollback image before anything is deployed, so a bad
// --rollback-to costs nothing and the live window can prepare K.
func (r *run) chooseK(ctx context.Context) (Image, error) {
	v := r.cfg.Image
	var records []Record
	if r.deps.Inventory != nil {
		var err error
		if records, err = r.deps.Inventory.List(ctx); err != nil {
			return Image{}, fmt.Errorf("list inventory: %w", err)
		}
	} else if r.cfg.RollbackTo != "" {
		return Image{}, fmt.Errorf("rollback to %q: no inventory to find it in", r.cfg.RollbackTo)
	}
	choice, err := ChooseRollback(v, records, r.cfg.RollbackTo)
	if err != nil {
		return Image{}, err
	}
	r.res.Rollback = choice
	k := v
	if choice.Tag != v.Tag {
		if k, err = r.deps.Inventory.Resolve(ctx, choice.Tag); err != nil {
			return Image{}, fmt.Errorf("resolve rollback image %s: %w", choice.Tag, err)
		}
	}
	r.res.K = k
	for _, rec := range records {
		if rec.Tag == v.Tag && rec.Verified {
			r.res.VerifiedV = true // by an earlier drill; MarkVerified would try to re-tag
		}
	}
	r.log("rollback target K %s: %s", k.Tag, choice.Reason)
	return k, nil
}

// enter ends the current phase and starts p, in which probes expect want.
func (r *run) enter(p Phase, want string) {
	now := r.mon.switchTo(p, want)
	if n := len(r.res.Marks); n > 0 {
		r.res.Marks[n-1].End = now
	}
	r.res.Marks = append(r.res.Marks, Mark{Phase: p, Start: now})
	r.phase = p
}
