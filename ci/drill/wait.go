package drill

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// watch consumes samples as they arrive until d has passed, or until stop returns true for one
// (then it reports true). It returns an error only when ctx ends.
func (r *run) watch(ctx context.Context, d time.Duration, stop func(Sample) bool) (bool, error) {
	return r.watchUntil(ctx, d, stop, nil)
}

// watchUntil is watch that also ends once tripped reports true, checked whenever a probe or a
// poll of the load balancer lands.
func (r *run) watchUntil(ctx context.Context, d time.Duration, stop func(Sample) bool, tripped func() bool) (bool, error) {
	timer := r.clock.After(d)
	check := func() bool {
		for _, s := range r.mon.since(r.seen) {
			r.seen++
			if stop != nil && stop(s) {
				return true
			}
		}
		return tripped != nil && tripped()
	}
	for {
		if check() {
			return true, nil
		}
		select {
		case <-r.mon.notify:
		case <-timer:
			return check(), nil // a sample that landed with the deadline still counts
		case <-ctx.Done():
			return false, r.interrupted(ctx)
		}
	}
}

// interrupted says "interrupted" or "timed out" apart, with the phase and ctx's cause.
func (r *run) interrupted(ctx context.Context) error {
	what := "interrupted"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		what = "timed out"
	}
	return fmt.Errorf("%s during %s: %w", what, r.phase, context.Cause(ctx))
}

// awaitHealthy waits up to ReadyTimeout for a probe started at or after from (when img's
// Deploy was called) to find img healthy, and says how long after since (the phase's start)
// that was. Not becoming healthy fails the phase's expectation; the drill goes on.
func (r *run) awaitHealthy(ctx context.Context, img Image, since, from time.Time) error {
	var probes int
	var last Sample
	healthy, err := r.watch(ctx, r.cfg.ReadyTimeout, func(s Sample) bool {
		if s.Phase != r.phase || s.At.Before(from) {
			return false
		}
		probes, last = probes+1, s
		return healthyWith(s, img) // in a fleet's rollback an answer from V is ok, not K healthy
	})
	if err != nil {
		return err
	}
	if healthy {
		r.expect(r.phase, Passed, "%s healthy %s after %s started (%d probes)", img.Tag, fmtDur(last.Observed().Sub(since)), r.phase, probes)
		return nil
	}
	if probes == 0 {
		r.expect(r.phase, Failed, "%s not healthy within %v: no probe completed", img.Tag, r.cfg.ReadyTimeout)
	} else {
		r.expect(r.phase, Failed, "%s not healthy within %v: %d probes, the last %s", img.Tag, r.cfg.ReadyTimeout, probes, describe(last.Sample))
	}
	return nil
}

// probesJudge reports whether failed probes may start the rollback: on one host, and on a
// fleet whose every host is faulted. Through a load balancer that still has healthy hosts,
// failed probes are the fault's blast radius until it routes around them (a few may fail in a
// row by chance), and its rule decides.
func (r *run) probesJudge() bool {
	return r.fleet == nil || r.cfg.Fleet.FaultHosts >= r.cfg.Fleet.Hosts
}

// outage watches the outage window; with AutoRollback a watchdog ends it once its rule trips
// (watchdog, below).
func (r *run) outage(ctx context.Context) error {
	detected := false
	w := newWatchdog(r.cfg)
	var balancer string // what the load balancer's rule saw, when it tripped
	tripped := func() bool {
		if r.view == nil || !r.cfg.AutoRollback {
			return false
		}
		why, ok := r.outOfRotation()
		balancer = why
		return ok
	}
	fired, err := r.watchUntil(ctx, r.cfg.Windows.Outage, func(s Sample) bool {
		if s.Phase != PhaseStop && s.Phase != PhaseOutage {
			return false
		}
		if !s.OK() && !detected {
			detected = true
			r.log("first failed probe %s after the fault: %s", fmtDur(s.Observed().Sub(r.res.StopAt)), s.Outcome)
		}
		if s.Phase == PhaseStop {
			return false // the watchdog judges the service once the fault is in effect
		}
		return w.see(s.OK()) && r.cfg.AutoRollback && r.probesJudge()
	}, tripped)
	if err != nil {
		return err
	}
	if fired && balancer != "" {
		r.res.RollbackTrigger = balancer
	} else if fired {
		r.res.RollbackTrigger = "watchdog: " + w.reason()
	} else {
		r.res.RollbackTrigger = fmt.Sprintf("outage window of %v elapsed", r.cfg.Windows.Outage)
	}
	r.log("%s", r.res.RollbackTrigger)
	return nil
}

// awaitAnswer waits until img answers HTTP at all (any status, any version) to a probe that
// started after it was deployed (an earlier one may be V's last answer): a broken build is
// live once it answers, and only then is the outage its symptoms.
func (r *run) awaitAnswer(ctx context.Context, img Image, deployed time.Time) error {
	answered, err := r.watch(ctx, r.cfg.ReadyTimeout, func(s Sample) bool {
		return s.Phase == r.phase && s.Status != 0 && !s.At.Before(deployed)
	})
	switch {
	case err != nil:
		return err
	case !answered:
		return fmt.Errorf("bad-deploy: %s did not answer within %v", img.Tag, r.cfg.ReadyTimeout)
	}
	r.log("%s is live", img.Tag)
	return nil
}
