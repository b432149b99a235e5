package drill

import (
	"fmt"
	"time"
)

// Unstarted is the Result of a drill that never started because a stage before it failed (the
// build, the tests, the publish, the host's boot): every expectation not run and the error
// recorded, so the report still says what happened.
func Unstarted(target string, cfg Config, err error, at time.Time) *Result {
	r := &Result{Target: target, Config: cfg, V: cfg.Image, K: cfg.Rollback.Image, Rollback: cfg.Rollback.Choice,
		Started: at, Ended: at, Expectations: notRun(cfg)}
	if err != nil {
		r.Error = "the drill did not start: " + err.Error()
	}
	return r
}

// notRun is every expectation the drill has, not run yet: the baseline's only when K needs
// verifying.
func notRun(cfg Config) []Expectation {
	var out []Expectation
	for _, e := range expectationNames {
		if e.phase == PhaseBaseline && !cfg.Rollback.Verify {
			continue
		}
		switch {
		case e.phase == PhaseOutage && cfg.Fleet.IsFleet():
			e.name = "the load balancer takes the faulty hosts out of rotation"
		case e.phase == PhaseOutage && cfg.Fault.Kind != "" && cfg.Fault.Kind != FaultStop:
			e.name = fmt.Sprintf("the outage shows the %s fault's symptoms", cfg.Fault.Kind)
		}
		out = append(out, Expectation{Phase: e.phase, Name: e.name, Status: NotRun})
	}
	return out
}
