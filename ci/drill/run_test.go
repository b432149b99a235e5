package drill_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

func TestRunHealthyDrillPassesAndRollsBackToTheLatestVerifiedImage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if !res.Passed() {
			t.Fatalf("drill failed: %+v", res.Expectations)
		}
		checkCalls(t, h.target.Calls(), "deploy v2", "stop", "deploy v1")
		if res.K.Tag != "v1" || res.Rollback.Kind != drill.RollbackVerified {
			t.Errorf("K %s (%s), want v1 chosen as verified", res.K.Tag, res.Rollback.Kind)
		}
		if got := h.inv.Marked(); !slices.Equal(got, []string{"v2"}) || !res.VerifiedV {
			t.Errorf("marked verified %q (VerifiedV %v), want v2 once", got, res.VerifiedV)
		}
		if want := drill.Phases[1:]; !slices.Equal(phasesRun(res), want) { // no baseline: K is verified
			t.Errorf("phases %v, want %v", phasesRun(res), want)
		}
		// Until V answers, the deploy probes every ReadinessInterval (50 ms after each refusal,
		// which takes 1 ms): V answers from 1.5 s, so the probe at 30 × 51 ms = 1.53 s (3 ms) is the
		// first healthy one; then probes every second, and the windows run 10 s each. The
		// rollback probes at the fine grain again: K answers 1.5 s after its Deploy.
		wantMarks := []struct {
			phase      drill.Phase
			start, end time.Duration
		}{
			{drill.PhaseDeploy, 0, ms(1533)},
			{drill.PhaseLive, ms(1533), ms(11533)},
			{drill.PhaseStop, ms(11533), ms(11533)},
			{drill.PhaseOutage, ms(11533), ms(21533)},
			{drill.PhaseRollback, ms(21533), ms(23066)},
			{drill.PhaseRecovery, ms(23066), ms(33066)},
			{drill.PhaseTeardown, ms(33066), ms(33066)}, // recorded by the harness, as the lifecycle does
		}
		for i, w := range wantMarks {
			if m := res.Marks[i]; m.Phase != w.phase || !m.Start.Equal(at(w.start)) || !m.End.Equal(at(w.end)) {
				t.Errorf("mark %d: %s %v..%v, want %s %v..%v", i, m.Phase, m.Start.Sub(base), m.End.Sub(base), w.phase, w.start, w.end)
			}
		}
		if !res.StopAt.Equal(at(ms(11533))) || !res.RollbackAt.Equal(at(ms(21533))) {
			t.Errorf("stop at %v, rollback at %v", res.StopAt.Sub(base), res.RollbackAt.Sub(base))
		}
		for p, want := range map[drill.Phase]int{drill.PhaseDeploy: 31, drill.PhaseLive: 10, drill.PhaseStop: 0,
			drill.PhaseOutage: 10, drill.PhaseRollback: 31, drill.PhaseRecovery: 10} {
			if got := countPhase(res, p); got != want {
				t.Errorf("%s: %d samples, want %d", p, got, want)
			}
		}
		for i, s := range res.Samples {
			if i > 0 {
				prev := res.Samples[i-1]
				gap := s.At.Sub(prev.At)
				switch {
				case prev.Phase == s.Phase && (s.Phase == drill.PhaseDeploy || s.Phase == drill.PhaseRollback):
					if gap != drill.ReadinessInterval+time.Millisecond {
						t.Errorf("sample %d: %v after the last, want the readiness grain after a refusal", i, gap)
					}
				case s.Phase == drill.PhaseRollback: // the first probe of the rollback starts with it
					if !s.At.Equal(res.RollbackAt) {
						t.Errorf("the rollback's first probe at %v, want at once (%v)", s.At.Sub(base), res.RollbackAt.Sub(base))
					}
				case gap != time.Second && !(prev.Phase == drill.PhaseRollback && s.Phase == drill.PhaseRecovery):
					t.Errorf("sample %d (%s): %v after the last, want the interval (1s)", i, s.Phase, gap)
				}
			}
			if m, _ := res.Mark(s.Phase); s.At.Before(m.Start) || !s.At.Before(m.End) {
				t.Errorf("sample %d at %v tagged %s, outside its phase %v..%v", i, s.At.Sub(base), s.Phase, m.Start.Sub(base), m.End.Sub(base))
			}
		}
		f := drill.ComputeFigures(res)
		for name, c := range map[string]struct{ got, want drill.NullDuration }{
			"detect":   {f.TimeToDetect, drill.NullDuration{D: ms(998), Valid: true}},       // probe at 12.53 s fails at 12.531
			"recover":  {f.TimeToRecover, drill.NullDuration{D: ms(1533), Valid: true}},     // K healthy at 23.066
			"downtime": {f.ObservedDowntime, drill.NullDuration{D: ms(10535), Valid: true}}, // 12.531 to 23.066
		} {
			if c.got != c.want {
				t.Errorf("%s: %+v, want %+v", name, c.got, c.want)
			}
		}
		if res.RollbackTrigger != "outage window of 10s elapsed" {
			t.Errorf("rollback trigger %q", res.RollbackTrigger)
		}
	})
}

func TestRunWatchdogRollsBackAfterConsecutiveFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.cfg.AutoRollback = true
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		// Outage probes at 12.53, 13.53, 14.53 s are refused; the third is known at 14.531.
		if got := countPhase(res, drill.PhaseOutage); got != drill.DefaultFailuresToRollback {
			t.Errorf("%d outage samples, want %d", got, drill.DefaultFailuresToRollback)
		}
		if !res.RollbackAt.Equal(at(ms(14531))) {
			t.Errorf("rollback at %v, want 14.531s", res.RollbackAt.Sub(base))
		}
		if !strings.HasPrefix(res.RollbackTrigger, "watchdog: 3 consecutive") {
			t.Errorf("rollback trigger %q", res.RollbackTrigger)
		}
	})
}

func TestRunKeepsProbingWhileStopRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.target.stopTakes, h.target.diesAfter = 3*time.Second, 500*time.Millisecond
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		if got := countPhase(res, drill.PhaseStop); got != 3 {
			t.Errorf("%d samples during the 3 s stop, want 3", got)
		}
		if f := drill.ComputeFigures(res); f.TimeToDetect.D != ms(998) {
			t.Errorf("detected after %v, want 998ms: the probe at 13 s, while Stop still ran", f.TimeToDetect.D)
		}
	})
}

func TestRunLetsTheLastLiveProbeFinishBeforeStopping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.prober.okLatency, h.prober.judgeAtEnd = 400*time.Millisecond, true
		// V is healthy at 1.93 s (the readiness probe at 1.53 s answers 400 ms later), so the
		// window ends at 11.73 s, mid-probe: the probe that started at 11.53 s.
		h.cfg.Windows.Live = 9800 * time.Millisecond
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		if !res.StopAt.Equal(at(ms(11930))) {
			t.Errorf("stop at %v, want 11.93s: after the probe started at 11.53 s answered", res.StopAt.Sub(base))
		}
	})
}

func TestRunTimesOutProbesAtTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.cfg.ProbeTimeout = time.Minute // capped at the interval
		h.cfg.Fault = drill.Fault{Kind: drill.FaultHang}
		h.prober.hangWhenDown = true
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		checkCalls(t, h.target.Calls(), "deploy v2", "inject hang", "stop", "clear", "deploy v1")
		if res.Config.ProbeTimeout != time.Second {
			t.Errorf("probe timeout %v, want capped at the 1s interval", res.Config.ProbeTimeout)
		}
		for _, s := range res.PhaseSamples(drill.PhaseOutage) {
			if s.Outcome != probe.Timeout || s.Latency != time.Second {
				t.Fatalf("outage sample %s after %v, want a timeout after 1s", s.Outcome, s.Latency)
			}
		}
		if got := countPhase(res, drill.PhaseOutage); got != 10 {
			t.Errorf("%d outage samples, want 10: timeouts must not skip ticks", got)
		}
	})
}

func TestRunPreparesKDuringTheLiveWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.prepare = true
		h.target.prepareTook = 15 * time.Second // longer than the live window: stop waits for it
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		checkCalls(t, h.target.Calls(), "deploy v2", "prepare v1", "stop", "deploy v1")
		// Prepare started with the live window at 1.533 s and took 15 s.
		if !res.StopAt.Equal(at(ms(16533))) {
			t.Errorf("stop at %v, want after prepare finished at 16.533s", res.StopAt.Sub(base))
		}
	})
}

func TestRunRecreatesVWhenThereIsNoOtherVerifiedImage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.prepare = true
		h.inv.records = h.inv.records[2:] // v1b (unverified) and V
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		checkCalls(t, h.target.Calls(), "deploy v2", "stop", "deploy v2")
		if res.K != h.cfg.Image || res.Rollback.Kind != drill.RollbackRecreate || !strings.Contains(res.Rollback.Reason, "re-creates V") {
			t.Errorf("K %s, rollback %+v: want V re-created and said so", res.K.Tag, res.Rollback)
		}
	})
}

func TestRunWithoutInventoryRecreatesV(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.noInventory = true
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		checkCalls(t, h.target.Calls(), "deploy v2", "stop", "deploy v2")
		if res.Rollback.Kind != drill.RollbackRecreate || res.VerifiedV {
			t.Errorf("rollback %+v, verified %v: want V re-created and nothing recorded", res.Rollback, res.VerifiedV)
		}
	})
}

func TestRunSkipsMarkingAnAlreadyVerifiedV(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.inv.records[3].Verified = true
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		if got := h.inv.Marked(); len(got) != 0 || !res.VerifiedV {
			t.Errorf("marked %q (VerifiedV %v): an immutable verified tag must not be written twice", got, res.VerifiedV)
		}
	})
}

func TestRunReportsProgressOnTheInjectedClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		if _, err := h.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		seen := map[drill.Phase]bool{}
		for _, e := range h.events {
			if e.At.Before(base) || e.Message == "" {
				t.Errorf("event %+v: want a message stamped by the injected clock", e)
			}
			seen[e.Phase] = true
		}
		for _, p := range []drill.Phase{drill.PhaseDeploy, drill.PhaseLive, drill.PhaseStop, drill.PhaseOutage, drill.PhaseRollback, drill.PhaseRecovery} {
			if !seen[p] {
				t.Errorf("no progress event in phase %s", p)
			}
		}
	})
}

// A K that no drill has verified (built from the parent commit for this run) is proven healthy
// and marked verified before V is deployed.
func TestRunVerifiesAnUnverifiedKBeforeDeployingV(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.cfg.RollbackTo = "v1b" // in the inventory, never verified
		h.verifyK = true
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if !res.Passed() {
			t.Fatalf("drill failed: %+v", res.Expectations)
		}
		checkCalls(t, h.target.Calls(), "deploy v1b", "stop", "deploy v2", "stop", "deploy v1b")
		if !slices.Equal(phasesRun(res), drill.Phases) {
			t.Errorf("phases %v, want %v", phasesRun(res), drill.Phases)
		}
		if got := h.inv.Marked(); !slices.Equal(got, []string{"v1b", "v2"}) {
			t.Errorf("marked verified %q, want v1b (baseline) then v2 (live)", got)
		}
		for _, s := range res.PhaseSamples(drill.PhaseBaseline) {
			if s.Want != "v1b" {
				t.Errorf("baseline sample expects %q, want v1b", s.Want)
			}
		}
		if e := res.Expectations[0]; e.Phase != drill.PhaseBaseline || e.Status != drill.Passed {
			t.Errorf("first expectation %+v, want the baseline passed", e)
		}
	})
}

func TestRunStopsWhenTheBaselineIsNotHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.cfg.RollbackTo = "v1b"
		h.verifyK = true
		h.target.boots = map[string]time.Duration{"v1b": time.Hour}
		res, err := h.run(t.Context())
		if err == nil || !strings.Contains(err.Error(), "nothing known-good to roll back to") {
			t.Fatalf("err %v, want the baseline to stop the drill", err)
		}
		checkCalls(t, h.target.Calls(), "deploy v1b")
		if got := h.inv.Marked(); len(got) != 0 {
			t.Errorf("marked %q, want nothing verified", got)
		}
		if st := expectations(res)[drill.PhaseDeploy]; st != drill.NotRun {
			t.Errorf("deploy %s, want not run", st)
		}
	})
}

// bad-deploy ships the broken build B over V; the watchdog sees B fail and rolls back to V,
// the known-good version, like a deploy tool's circuit breaker.
func TestRunBadDeployIsCaughtAndRolledBackToV(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.noInventory = true // K is V
		h.cfg.Fault = drill.Fault{Kind: drill.FaultBadDeploy}
		h.cfg.Broken = image("v2-broken")
		h.cfg.AutoRollback = true
		h.target.boots = map[string]time.Duration{"v2-broken": 10 * time.Millisecond}
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		checkCalls(t, h.target.Calls(), "deploy v2", "stop", "deploy v2-broken", "stop", "deploy v2")
		if !strings.HasPrefix(res.RollbackTrigger, "watchdog: 3 consecutive") {
			t.Errorf("trigger %q, want the watchdog", res.RollbackTrigger)
		}
		for _, s := range res.PhaseSamples(drill.PhaseOutage) {
			if s.Outcome != probe.WrongVersion {
				t.Errorf("outage sample %s, want wrong_version from the broken build", s.Outcome)
			}
		}
		if e := expectationByPhase(res, drill.PhaseOutage); !strings.Contains(e.Name, "bad-deploy") {
			t.Errorf("outage expectation %q, want it named for bad-deploy", e.Name)
		}
	})
}

// A fault is judged by its own symptoms: a "hang" whose probes are refused did not hang.
func TestRunFailsAnOutageWithTheWrongSymptoms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.cfg.Fault = drill.Fault{Kind: drill.FaultHang} // the fake prober refuses when down
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		e := expectationByPhase(res, drill.PhaseOutage)
		if e.Status != drill.Failed || !strings.Contains(e.Message, "did not show its symptoms (timeout): refused ×10") {
			t.Errorf("outage %s: %q, want failed for refusals", e.Status, e.Message)
		}
		checkCalls(t, h.target.Calls(), "deploy v2", "inject hang", "stop", "clear", "deploy v1")
	})
}

func expectationByPhase(r *drill.Result, p drill.Phase) drill.Expectation {
	for _, e := range r.Expectations {
		if e.Phase == p {
			return e
		}
	}
	return drill.Expectation{}
}

// fakeUsers sends one user request every 500 ms of simulated time, answered while the fake
// target serves.
type fakeUsers struct {
	target *fakeTarget
	clock  testClock
}

func (u fakeUsers) Run(ctx context.Context, endpoint func() string, now func() time.Time, record func(drill.UserRequest)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.clock.After(500 * time.Millisecond):
		}
		r := drill.UserRequest{At: now(), Outcome: probe.Refused, Latency: time.Millisecond}
		if u.target.serving(r.At) != "" {
			r.Outcome, r.Status = probe.OK, 200
		}
		record(r)
	}
}

// With a users' load, the result says what users saw in each window: all answered while V and
// K serve, all failed in the outage.
func TestRunMeasuresWhatUsersSaw(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.cfg.LoadRPS = 2
		h.users = fakeUsers{target: h.target, clock: h.clock}
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v %+v", err, res.Expectations)
		}
		u := drill.ComputeFigures(res).Users
		if u == nil {
			t.Fatal("no user figures with a load")
		}
		perPhase := map[drill.Phase]drill.Availability{}
		for _, a := range u.ByPhase {
			perPhase[a.Phase] = a
		}
		// 10 s windows at 2 requests a second (requests at a window's edges may fall either side).
		for phase, answered := range map[drill.Phase]bool{drill.PhaseLive: true, drill.PhaseOutage: false, drill.PhaseRecovery: true} {
			a := perPhase[phase]
			if a.Probes < 19 || a.Probes > 21 || answered && a.Healthy != a.Probes || !answered && a.Healthy != 0 {
				t.Errorf("%s: %d requests, %d answered; want 19 to 21, all answered: %v", phase, a.Probes, a.Healthy, answered)
			}
		}
		if got := u.ErrorRate(); got < 0.2 || got > 0.4 {
			t.Errorf("user-facing error rate %.2f, want about a third (the outage's share)", got)
		}
	})
}

// hungUser sends one request a second into the outage that hangs until it times out 15 s
// later, long after the rollback: it is the outage's failure, not a later phase's.
type hungUser struct {
	clock testClock
	after time.Duration
}

func (u hungUser) Run(ctx context.Context, _ func() string, now func() time.Time, record func(drill.UserRequest)) {
	select {
	case <-ctx.Done():
		return
	case <-u.clock.After(u.after):
	}
	r := drill.UserRequest{At: now(), Outcome: probe.Timeout, Latency: 15 * time.Second}
	select {
	case <-ctx.Done():
	case <-u.clock.After(15 * time.Second):
	}
	record(r)
}

func TestAUserRequestCountsInThePhaseItStartedIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.cfg.LoadRPS = 1
		// The users start with the live window (10 s after V's deploy); the outage begins 10 s later.
		h.users = hungUser{clock: h.clock, after: 11 * time.Second}
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if len(res.Requests) != 1 {
			t.Fatalf("requests %+v, want the one hung request", res.Requests)
		}
		live, _ := res.Mark(drill.PhaseLive)
		outage, _ := res.Mark(drill.PhaseOutage)
		req := res.Requests[0]
		if req.Phase != drill.PhaseOutage || req.At.Before(outage.Start) || req.At.Sub(live.Start) != 11*time.Second {
			t.Errorf("the request sent %s into the live window, during the outage (%s to %s), counts in %s",
				req.At.Sub(live.Start), outage.Start.Sub(live.Start), outage.End.Sub(live.Start), req.Phase)
		}
	})
}

// Every "healthy after" figure counts from the start of its own phase, so it never exceeds
// that phase's length in the phase table (a deploy after a baseline once counted from the
// baseline's start).
func TestHealthyFiguresCountFromTheirOwnPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.cfg.RollbackTo = "v1b"
		h.verifyK = true
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, %+v", err, res.Expectations)
		}
		healthy := regexp.MustCompile(`healthy (\S+) after (\w+) started`)
		seen := 0
		for _, e := range res.Expectations {
			m := healthy.FindStringSubmatch(e.Message)
			if m == nil {
				continue
			}
			seen++
			took, err := time.ParseDuration(m[1])
			if err != nil || m[2] != string(e.Phase) {
				t.Fatalf("%s: %q: duration %v, phase %q", e.Phase, e.Message, err, m[2])
			}
			mark, _ := res.Mark(e.Phase)
			if length := mark.End.Sub(mark.Start); took < h.target.boot || took > length {
				t.Errorf("%s: healthy after %s, want between the boot (%s) and the phase's length (%s)", e.Phase, took, h.target.boot, length)
			}
		}
		if seen != 3 {
			t.Errorf("%d healthy figures, want baseline, deploy and rollback", seen)
		}
	})
}

// When K is V re-created, an answer from the faulted V while the rollback stops it (docker
// stop thaws a hung app to deliver SIGTERM) is V's, not K's: K counts as healthy only from a
// probe started once its Deploy was called.
func TestAnAnswerFromTheFaultedVIsNotKHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.inv.records = h.inv.records[2:] // nothing verified but V: K is V re-created
		h.cfg.Fault = drill.Fault{Kind: drill.FaultKill}
		h.cfg.AutoRollback = true
		h.target.stopTakes, h.target.diesAfter = time.Second, 500*time.Millisecond // V answers again for 0.5 s of the stop
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		checkCalls(t, h.target.Calls(), "deploy v2", "inject kill", "stop", "clear", "deploy v2")
		if d := res.KDeployAt.Sub(res.RollbackAt); d != time.Second {
			t.Fatalf("K deployed %v after the rollback began, want after the 1 s stop", d)
		}
		f := drill.ComputeFigures(res)
		// K answers 1.5 s after its Deploy, seen by a readiness probe within 51 ms of that.
		if least := time.Second + h.target.boot; !f.TimeToRecover.Valid || f.TimeToRecover.D < least || f.TimeToRecover.D > least+60*time.Millisecond {
			t.Errorf("time to recover %+v, want %v and one readiness probe: V's answers during the stop are not K's", f.TimeToRecover, least)
		}
	})
}
