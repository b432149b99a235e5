package drill

import (
	"time"

	"github.com/deploydrill/deploydrill/ci/probe"
)

// Phase is one step of the drill.
type Phase string

const (
	PhaseBaseline Phase = "baseline" // only for a K no drill has verified: Deploy(K), healthy, mark verified, Stop
	PhaseDeploy   Phase = "deploy"   // Deploy(V), then wait for V to answer healthy
	PhaseLive     Phase = "live"     // the live window: V should stay up
	PhaseStop     Phase = "stop"     // Stop: the outage begins
	PhaseOutage   Phase = "outage"   // the outage window: nothing should answer
	PhaseRollback Phase = "rollback" // Deploy(K), then wait for K to answer healthy
	PhaseRecovery Phase = "recovery" // the recovery window: K should stay up
	PhaseTeardown Phase = "teardown" // Teardown: release everything
)

// Phases lists the phases in the order they run.
var Phases = []Phase{PhaseBaseline, PhaseDeploy, PhaseLive, PhaseStop, PhaseOutage, PhaseRollback, PhaseRecovery, PhaseTeardown}

// Mark is when a phase ran. End is zero only while it runs.
type Mark struct {
	Phase      Phase
	Start, End time.Time
}

// Duration is how long the phase ran.
func (m Mark) Duration() time.Duration { return m.End.Sub(m.Start) }

// Sample is a probe tagged with the phase it started in and the version it expected.
type Sample struct {
	Phase Phase
	Want  string // the version the drill expected when the probe started
	probe.Sample
}

// Status is the verdict on an expectation.
type Status string

const (
	Passed Status = "passed"
	Failed Status = "failed"
	NotRun Status = "not_run" // the drill stopped before reaching it
)

// Expectation is what one phase must show. Names are stable across runs (CI tracks them);
// Message carries the run's details.
type Expectation struct {
	Phase   Phase
	Name    string
	Status  Status
	Message string
}

// The expectations, one per phase that has one, in phase order.
var expectationNames = []struct {
	phase Phase
	name  string
}{
	{PhaseBaseline, "rollback version is healthy before the drill"}, // only when Rollback.Verify
	{PhaseDeploy, "new version becomes healthy"},
	{PhaseLive, "new version stays up through the live window"},
	{PhaseOutage, "nothing answers after stop"},
	{PhaseRollback, "rollback version becomes healthy"},
	{PhaseRecovery, "rollback version stays up through the recovery window"},
	{PhaseTeardown, "teardown releases everything"},
}

// RollbackKind says how K was chosen.
type RollbackKind string

const (
	RollbackExplicit RollbackKind = "explicit" // Config.RollbackTo
	RollbackVerified RollbackKind = "verified" // the most recent verified image that is not V
	RollbackRecreate RollbackKind = "recreate" // no candidate: V is re-created
	RollbackGit      RollbackKind = "git"      // no verified candidate: built from an earlier commit (the parent, or --rollback-to)
)

// RollbackChoice is K's tag and why it was chosen.
type RollbackChoice struct {
	Kind   RollbackKind
	Tag    string
	Reason string // a sentence for the report
}

// Result is everything a drill observed. It is complete even when the drill failed part way:
// phases not reached have no Mark and their expectations are NotRun.
type Result struct {
	Target   string
	Config   Config // normalized
	V, K     Image
	Rollback RollbackChoice
	Started  time.Time
	Ended    time.Time
	Marks    []Mark   // in the order phases ran
	Samples  []Sample // in the order probes started
	// Requests is what the users' load saw (Deps.Load), in the order requests finished.
	Requests []RequestSample
	// StopAt is when Stop was called; RollbackAt when the rollback began (the fault's leftovers
	// are stopped first); KDeployAt when Deploy(K) was called, after that: only a probe started
	// since can have found K (when K is V re-created, an earlier answer may be V's). Zero if not
	// reached.
	StopAt, RollbackAt, KDeployAt time.Time
	// Steps is where the time of a phase's deploy or stop went, as the target measured it
	// (Explainer); nil for targets that do not say.
	Steps map[Phase][]Step
	// FaultAt is when the fault was in effect (a broken build on one host: when it first
	// answered; on a fleet: when it landed, Deploy returning).
	FaultAt time.Time
	// RollbackTrigger says what ended the outage window: the window elapsing or the watchdog.
	RollbackTrigger string
	VerifiedV       bool // V is verified in the inventory: by this drill after a healthy live window, or earlier
	Expectations    []Expectation
	Warnings        []string // problems that did not fail the drill (e.g. marking V verified)
	Error           string   // what stopped the drill early; "" when it ran to the end
	// Fleet is what the load balancer saw of a fleet drill's hosts; nil for a single host.
	Fleet         *FleetResult
	Teardown      Teardown // what the lifecycle's teardown did (RecordTeardown)
	TeardownError string
}

// Teardown is what a run's teardown did: it runs after the drill (or after a stage before it
// failed), so the report written after it can say what may be left.
type Teardown struct {
	Steps     []Step
	Retention string // what retention kept and removed; "" when it did not run
	// Left names what may remain when a step failed, in deletion order; Sweep is the exact
	// command that removes it.
	Left  []string
	Sweep string
}

// kFrom is when a probe may first have found K: KDeployAt, or RollbackAt in a result that has
// no KDeployAt.
func (r *Result) kFrom() time.Time {
	if !r.KDeployAt.IsZero() {
		return r.KDeployAt
	}
	return r.RollbackAt
}

// Step is one timed step of what a target did: a teardown's, or how a version came up (its
// session, image, container and tunnel, first answer, the switch to it) or went down.
type Step struct {
	Name  string
	Took  time.Duration
	Error string // "" when it succeeded
}

// RecordTeardown adds the teardown phase, its outcome and its expectation to the result.
func (r *Result) RecordTeardown(start, end time.Time, t Teardown, err error) {
	r.Marks = append(r.Marks, Mark{Phase: PhaseTeardown, Start: start, End: end})
	r.Ended = end
	r.Teardown = t
	e := &r.Expectations[len(r.Expectations)-1] // teardown's is the last one
	if err != nil {
		r.TeardownError = err.Error()
		e.Status, e.Message = Failed, err.Error()
		return
	}
	e.Status, e.Message = Passed, "released in "+fmtDur(end.Sub(start))
}

// Passed reports whether the drill ran to the end, tore down cleanly and met every expectation.
func (r *Result) Passed() bool {
	if r.Error != "" || r.TeardownError != "" || len(r.Expectations) == 0 {
		return false
	}
	for _, e := range r.Expectations {
		if e.Status != Passed {
			return false
		}
	}
	return true
}

// Mark returns the phase's mark, if the phase ran.
func (r *Result) Mark(p Phase) (Mark, bool) {
	for _, m := range r.Marks {
		if m.Phase == p {
			return m, true
		}
	}
	return Mark{}, false
}

// PhaseSamples returns the samples that started in phase p.
func (r *Result) PhaseSamples(p Phase) []Sample { return phaseSamples(r.Samples, p) }
