package drill

import "time"

// Unstarted is the Result of a drill that never started because a stage before it failed (the
// build, the tests, the publish, the host's boot): every expectation not run and the error
// recorded, so the report still says what happened.
func Unstarted(target string, cfg Config, err error, at time.Time) *Result {
	if normalized, nerr := cfg.Normalize(); nerr == nil {
		cfg = normalized
	}
	r := &Result{Target: target, Config: cfg, V: cfg.Image, Started: at, Ended: at}
	if err != nil {
		r.Error = "the drill did not start: " + err.Error()
	}
	for _, e := range expectationNames {
		r.Expectations = append(r.Expectations, Expectation{Phase: e.phase, Name: e.name, Status: NotRun})
	}
	return r
}
