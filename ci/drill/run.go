package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Run drives one drill: deploy V, live window, stop and outage window, rollback to K, recovery
// window. It returns a Result whenever the drill started, also alongside an error. It does not
// tear down: the caller's lifecycle does, whatever happened, and records it with
// Result.RecordTeardown before the report is written.
//
// The error reports what stopped the drill early (a target call failing, ctx ending); an unmet
// expectation is not an error but a failed Expectation in the Result, and the drill carries on
// so the report shows every phase. The caller decides the exit status from Result.Passed.
func Run(ctx context.Context, cfg Config, deps Deps) (*Result, error) {
	if err := cfg.ready(); err != nil {
		return nil, err
	}
	if deps.Target == nil || deps.Prober == nil {
		return nil, errors.New("drill: a target and a prober are required")
	}
	if deps.Clock == nil {
		deps.Clock = SystemClock{}
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	r := &run{
		cfg:   cfg,
		deps:  deps,
		clock: deps.Clock,
		mon:   newMonitor(deps.Clock, deps.Prober, cfg.Interval, cfg.ProbeTimeout),
		spec:  faults[cfg.Fault.Kind],
		res: &Result{Target: deps.Target.Name(), Config: cfg, V: cfg.Image, K: cfg.Rollback.Image,
			Rollback: cfg.Rollback.Choice, VerifiedV: cfg.Rollback.VerifiedV},
	}
	r.mon.latencySLO = cfg.LatencySLO
	if cfg.Fleet.IsFleet() { // a single host's target may implement Fleet too: the config decides
		fleet, ok := deps.Target.(Fleet)
		if !ok {
			return nil, fmt.Errorf("drill: a fleet of %d hosts, but the %s target is not a fleet", cfg.Fleet.Hosts, deps.Target.Name())
		}
		if info := fleet.Fleet(); len(info.Hosts) != cfg.Fleet.Hosts || len(info.Faulty) != cfg.Fleet.FaultHosts {
			return nil, fmt.Errorf("drill: a fleet of %d hosts, %d faulty, but the %s target has %d, %d faulty",
				cfg.Fleet.Hosts, cfg.Fleet.FaultHosts, deps.Target.Name(), len(info.Hosts), len(info.Faulty))
		}
		r.fleet = fleet
		r.view = &balancerView{fleet: fleet, clock: deps.Clock, interval: cfg.Interval, timeout: cfg.ProbeTimeout, mon: r.mon}
	}
	r.res.Expectations = notRun(cfg)
	runErr := r.drive(ctx)
	if runErr != nil {
		r.res.Error = runErr.Error()
		r.expect(r.phase, Failed, "%v", runErr)
	}
	if r.users != nil { // the drill stopped early
		r.res.Requests = r.stopUsers()
	}
	r.mon.finish(ctx)
	r.res.Samples = r.mon.since(0)
	if r.fleet != nil {
		r.res.Fleet = &FleetResult{FleetInfo: r.fleet.Fleet(), Samples: r.view.finish()}
	}
	r.stopPreparing()
	r.res.Ended = r.clock.Now()
	r.res.Marks[len(r.res.Marks)-1].End = r.res.Ended
	return r.res, runErr
}

type run struct {
	cfg   Config
	deps  Deps
	clock Clock
	mon   *monitor
	spec  faultSpec // the fault's entry in the table
	res   *Result
	phase Phase
	seen  int // samples the drill has looked at while waiting

	prepCancel context.CancelFunc
	prepDone   chan error
	users      *users        // the users' load, while it runs
	fleet      Fleet         // the target as a fleet; nil for one host
	view       *balancerView // the load balancer's view of the fleet
}

func (r *run) drive(ctx context.Context) error {
	v, k := r.cfg.Image, r.cfg.Rollback.Image
	if r.cfg.Rollback.Verify {
		if err := r.baseline(ctx, k); err != nil {
			return err
		}
	}
	deployStarted := r.enter(PhaseDeploy, v.Version)
	if r.res.Started.IsZero() {
		r.res.Started = deployStarted
	}
	if ctx.Err() != nil {
		return r.interrupted(ctx)
	}
	r.log("deploying V %s (%s)", v.Tag, v.Ref)
	if err := r.deps.Target.Deploy(ctx, v); err != nil {
		return fmt.Errorf("deploy %s: %w", v.Tag, err)
	}
	r.explain(PhaseDeploy)
	r.mon.setEndpoint(r.deps.Target.Endpoint())
	r.startWatching(ctx)
	if err := r.awaitHealthy(ctx, v, deployStarted, deployStarted); err != nil {
		return err
	}

	r.enter(PhaseLive, v.Version)
	r.log("watching %s for %v", v.Tag, r.cfg.Windows.Live)
	r.startUsers(ctx)
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
	r.log("fault %s on %s: %s", r.cfg.Fault, v.Tag, r.spec.what)
	if err := r.inject(ctx, v); err != nil {
		return err
	}
	r.res.FaultAt = r.clock.Now()
	r.log("%s in effect after %s", r.cfg.Fault.Kind, r.clock.Now().Sub(r.res.StopAt).Round(time.Millisecond))

	r.enter(PhaseOutage, v.Version)
	switch {
	case r.cfg.AutoRollback && !r.probesJudge():
		r.log("watching for up to %v; the rollback starts once the load balancer has taken the faulty hosts out of rotation", r.cfg.Windows.Outage)
	case r.cfg.AutoRollback && r.fleet != nil:
		r.log("watching for up to %v; the watchdog rolls back after %s, or once the load balancer has taken every host out", r.cfg.Windows.Outage, r.watchdogRule())
	case r.cfg.AutoRollback:
		r.log("watching for up to %v; the watchdog rolls back after %s", r.cfg.Windows.Outage, r.watchdogRule())
	default:
		r.log("watching for %v", r.cfg.Windows.Outage)
	}
	if err := r.outage(ctx); err != nil {
		return err
	}

	r.enter(PhaseRollback, k.Version)
	if r.fleet != nil && k.Version != v.Version {
		r.mon.tolerate(v.Version) // the hosts not rolled back yet still serve V
	}
	r.mon.settle(ctx)
	if ctx.Err() != nil {
		return r.interrupted(ctx)
	}
	if r.view != nil {
		r.expectOutOfRotation()
	} else {
		r.expectSymptoms()
	}
	r.res.RollbackAt = r.clock.Now()
	if err := r.removeFault(ctx, v); err != nil {
		return err
	}
	r.log("rolling back to K %s (%s)", k.Tag, k.Ref)
	r.res.KDeployAt = r.mon.ready()
	if err := r.deps.Target.Deploy(ctx, k); err != nil {
		return fmt.Errorf("rollback: deploy %s: %w", k.Tag, err)
	}
	r.explain(PhaseRollback)
	r.mon.setEndpoint(r.deps.Target.Endpoint())
	if err := r.awaitHealthy(ctx, k, r.res.RollbackAt, r.res.KDeployAt); err != nil {
		return err
	}

	r.enter(PhaseRecovery, k.Version)
	r.log("watching %s for %v", k.Tag, r.cfg.Windows.Recovery)
	if _, err := r.watch(ctx, r.cfg.Windows.Recovery, nil); err != nil {
		return err
	}
	r.res.Requests = r.stopUsers()
	r.mon.finish(ctx)
	r.expectUp(PhaseRecovery, k)
	return nil
}

// inject starts the outage: a stop, a broken build over V, or the target's own fault, on the
// fault's target (a fleet's faulty hosts).
func (r *run) inject(ctx context.Context, v Image) error {
	t := r.faultTarget()
	switch {
	case r.cfg.Fault.Kind == FaultStop:
		if err := t.Stop(ctx); err != nil {
			return fmt.Errorf("stop %s: %w", v.Tag, err)
		}
		r.explain(PhaseStop)
	case r.cfg.Fault.Kind == FaultBadDeploy:
		b := r.cfg.Broken
		if err := t.Stop(ctx); err != nil {
			return fmt.Errorf("bad-deploy: stop %s: %w", v.Tag, err)
		}
		if err := t.Deploy(ctx, b); err != nil {
			return fmt.Errorf("bad-deploy: deploy %s: %w", b.Tag, err)
		}
		if r.view != nil { // behind a load balancer, B answers only until its health checks fail
			return nil
		}
		r.mon.setEndpoint(r.deps.Target.Endpoint())
		return r.awaitAnswer(ctx, b, r.clock.Now()) // the outage is B answering badly, not B still starting
	default:
		f, ok := t.(Faulter)
		if !ok {
			return fmt.Errorf("fault %s: the %s target cannot inject it", r.cfg.Fault.Kind, r.deps.Target.Name())
		}
		if err := f.Inject(ctx, r.cfg.Fault); err != nil {
			return fmt.Errorf("inject %s into %s: %w", r.cfg.Fault, v.Tag, err)
		}
	}
	return nil
}

// removeFault takes the fault away before the rollback: a fleet's faulty hosts leave its load
// balancer first (draining), then whatever still runs where the fault landed (a frozen,
// firewalled or crashing V, the broken build) is stopped with its fault still in place, so V
// never answers again, then the target's own faults are cleared, so K starts on a clean host.
// A graceful stop left nothing running.
func (r *run) removeFault(ctx context.Context, v Image) error {
	if r.cfg.Fault.Kind == FaultStop {
		return nil
	}
	if r.fleet != nil {
		r.log("taking the faulty hosts out of the load balancer")
		if err := r.fleet.Isolate(ctx); err != nil {
			return fmt.Errorf("rollback: take the faulty hosts out of the load balancer: %w", err)
		}
	}
	t := r.faultTarget()
	if err := t.Stop(ctx); err != nil {
		return fmt.Errorf("rollback: stop what runs after %s: %w", r.cfg.Fault.Kind, err)
	}
	if f, ok := t.(Faulter); ok && r.spec.injected {
		if err := f.Clear(ctx); err != nil {
			return fmt.Errorf("rollback: clear %s: %w", r.cfg.Fault.Kind, err)
		}
	}
	return nil
}

// baseline proves K healthy before V is deployed, marks it verified and stops it: the drill
// then rolls back to a known-good version, not merely to an older one.
func (r *run) baseline(ctx context.Context, k Image) error {
	r.res.Started = r.enter(PhaseBaseline, k.Version)
	if ctx.Err() != nil {
		return r.interrupted(ctx)
	}
	r.log("K %s has not passed a drill yet: deploying it first (%s)", k.Tag, k.Ref)
	if err := r.deps.Target.Deploy(ctx, k); err != nil {
		return fmt.Errorf("baseline: deploy %s: %w", k.Tag, err)
	}
	r.explain(PhaseBaseline)
	r.mon.setEndpoint(r.deps.Target.Endpoint())
	r.startWatching(ctx)
	if err := r.awaitHealthy(ctx, k, r.res.Started, r.res.Started); err != nil {
		return err
	}
	r.mon.settle(ctx)
	if !r.passed(PhaseBaseline) {
		return fmt.Errorf("baseline: %s is not healthy, so there is nothing known-good to roll back to", k.Tag)
	}
	if r.deps.Inventory != nil {
		if err := r.deps.Inventory.MarkVerified(ctx, k.Tag); err != nil {
			r.warn("mark %s verified: %v", k.Tag, err)
		} else {
			r.log("marked %s verified", k.Tag)
		}
	}
	if err := r.deps.Target.Stop(ctx); err != nil {
		return fmt.Errorf("baseline: stop %s: %w", k.Tag, err)
	}
	return nil
}

// explain records where the time of phase p's deploy (or, for the stop, its stop) went, when
// the target says (Explainer). A fleet's hosts say nothing: the load balancer's view does.
func (r *run) explain(p Phase) {
	e, ok := r.deps.Target.(Explainer)
	if !ok || r.fleet != nil {
		return
	}
	steps := e.DeploySteps()
	if p == PhaseStop {
		steps = e.StopSteps()
	}
	if len(steps) == 0 {
		return
	}
	if r.res.Steps == nil {
		r.res.Steps = map[Phase][]Step{}
	}
	r.res.Steps[p] = steps
}

// enter ends the current phase and starts p, in which probes expect want; it returns p's start,
// which p's own figures count from.
func (r *run) enter(p Phase, want string) time.Time {
	now := r.mon.switchTo(p, want)
	if n := len(r.res.Marks); n > 0 {
		r.res.Marks[n-1].End = now
	}
	r.res.Marks = append(r.res.Marks, Mark{Phase: p, Start: now})
	r.phase = p
	return now
}

// startWatching starts the probes and, for a fleet, the polls of the load balancer's view.
func (r *run) startWatching(ctx context.Context) {
	r.mon.start(ctx)
	r.view.start(ctx)
}
