package drill_test

import (
	"slices"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// sample is a probe started atMs after base that took latMs.
func sample(p drill.Phase, atMs int, o probe.Outcome, latMs int, version, want string) drill.Sample {
	return drill.Sample{Phase: p, Want: want, Sample: probe.Sample{At: at(ms(atMs)), Outcome: o, Latency: ms(latMs), Version: version}}
}

// figureResult: V=v2 up until stop at 3000 ms; K=v1 deployed at 5000 ms, healthy from the
// probe at 6000 ms. The live window has one timeout before the stop, which is not the outage.
func figureResult() *drill.Result {
	ok, refused, timeout := probe.OK, probe.Refused, probe.Timeout
	return &drill.Result{
		V: image("v2"), K: image("v1"),
		StopAt: at(ms(3000)), RollbackAt: at(ms(5000)),
		Marks: []drill.Mark{
			{Phase: drill.PhaseDeploy, Start: at(0), End: at(ms(1000))},
			{Phase: drill.PhaseLive, Start: at(ms(1000)), End: at(ms(3000))},
			{Phase: drill.PhaseStop, Start: at(ms(3000)), End: at(ms(3100))},
			{Phase: drill.PhaseOutage, Start: at(ms(3100)), End: at(ms(5000))},
			{Phase: drill.PhaseRollback, Start: at(ms(5000)), End: at(ms(6020))},
			{Phase: drill.PhaseRecovery, Start: at(ms(6020)), End: at(ms(8000))},
			{Phase: drill.PhaseTeardown, Start: at(ms(8000)), End: at(ms(8500))},
		},
		Samples: []drill.Sample{
			sample(drill.PhaseDeploy, 0, refused, 1, "", "v2"),
			sample(drill.PhaseDeploy, 500, ok, 4, "v2", "v2"),
			sample(drill.PhaseLive, 1500, ok, 2, "v2", "v2"),
			sample(drill.PhaseLive, 2000, timeout, 400, "", "v2"),
			sample(drill.PhaseLive, 2500, ok, 6, "v2", "v2"),
			sample(drill.PhaseStop, 3000, ok, 8, "v2", "v2"), // answered just before dying
			sample(drill.PhaseOutage, 3500, refused, 2, "", "v2"),
			sample(drill.PhaseOutage, 4000, refused, 1, "", "v2"),
			sample(drill.PhaseOutage, 4500, refused, 1, "", "v2"),
			sample(drill.PhaseRollback, 5500, refused, 1, "", "v1"),
			sample(drill.PhaseRollback, 6000, ok, 20, "v1", "v1"),
			sample(drill.PhaseRecovery, 6500, ok, 10, "v1", "v1"),
			sample(drill.PhaseRecovery, 7000, ok, 3, "v1", "v1"),
		},
	}
}

func TestComputeFigures(t *testing.T) {
	f := drill.ComputeFigures(figureResult())
	valid := func(d time.Duration) drill.NullDuration { return drill.NullDuration{D: d, Valid: true} }
	if want := valid(ms(502)); f.TimeToDetect != want { // refused at 3500+2
		t.Errorf("time to detect %+v, want %+v", f.TimeToDetect, want)
	}
	if want := valid(ms(1020)); f.TimeToRecover != want { // ok at 6000+20
		t.Errorf("time to recover %+v, want %+v", f.TimeToRecover, want)
	}
	if want := valid(ms(2518)); f.ObservedDowntime != want { // 3502 to 6020
		t.Errorf("observed downtime %+v, want %+v", f.ObservedDowntime, want)
	}
	wantAvail := []drill.Availability{
		{Phase: drill.PhaseDeploy, Probes: 2, Healthy: 1},
		{Phase: drill.PhaseLive, Probes: 3, Healthy: 2},
		{Phase: drill.PhaseStop, Probes: 1, Healthy: 1},
		{Phase: drill.PhaseOutage, Probes: 3, Healthy: 0},
		{Phase: drill.PhaseRollback, Probes: 2, Healthy: 1},
		{Phase: drill.PhaseRecovery, Probes: 2, Healthy: 2},
	}
	sameCounts := func(a, b drill.Availability) bool {
		return a.Phase == b.Phase && a.Probes == b.Probes && a.Healthy == b.Healthy
	}
	if !slices.EqualFunc(f.Availability, wantAvail, sameCounts) {
		t.Errorf("availability %+v, want %+v", f.Availability, wantAvail)
	}
	for _, a := range f.Availability {
		total := 0
		for _, n := range a.Outcomes {
			total += n
		}
		if total != a.Probes || a.Outcomes["ok"] != a.Healthy {
			t.Errorf("%s outcome mix %v does not add up to %d probes, %d healthy", a.Phase, a.Outcomes, a.Probes, a.Healthy)
		}
	}
	if got := f.Availability[1].Ratio(); got != 2.0/3 {
		t.Errorf("live ratio %v", got)
	}
	// Healthy latencies: 4 2 6 8 20 10 3 -> sorted 2 3 4 6 8 10 20.
	if want := (drill.LatencyStats{Count: 7, P50: ms(6), P95: ms(20), P99: ms(20), Max: ms(20)}); f.Latency != want {
		t.Errorf("latency %+v, want %+v", f.Latency, want)
	}
	if f.Probes != 13 || f.Failed != 6 {
		t.Errorf("probes %d failed %d, want 13 and 6", f.Probes, f.Failed)
	}
	wantPhases := []drill.PhaseTime{{drill.PhaseDeploy, ms(1000)}, {drill.PhaseLive, ms(2000)}, {drill.PhaseStop, ms(100)},
		{drill.PhaseOutage, ms(1900)}, {drill.PhaseRollback, ms(1020)}, {drill.PhaseRecovery, ms(1980)}, {drill.PhaseTeardown, ms(500)}}
	if !slices.Equal(f.Phases, wantPhases) {
		t.Errorf("phases %+v, want %+v", f.Phases, wantPhases)
	}
}

func TestComputeFiguresLeavesUnmeasuredFiguresInvalid(t *testing.T) {
	tests := []struct {
		name                      string
		edit                      func(r *drill.Result)
		detect, recover, downtime bool
	}{
		{"a drill stopped before the outage measures nothing", func(r *drill.Result) {
			r.StopAt, r.RollbackAt, r.Samples = time.Time{}, time.Time{}, r.Samples[:5]
		}, false, false, false},
		{"an outage nobody noticed has no detection or downtime", func(r *drill.Result) {
			r.Samples = slices.DeleteFunc(r.Samples, func(s drill.Sample) bool { return !s.OK() })
		}, false, true, false},
		{"a rollback that never became healthy has no recovery or downtime", func(r *drill.Result) {
			r.Samples = r.Samples[:10]
		}, true, false, false},
		{"a healthy answer from another version is not recovery", func(r *drill.Result) {
			r.K = image("v0")
		}, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := figureResult()
			tt.edit(r)
			f := drill.ComputeFigures(r)
			if f.TimeToDetect.Valid != tt.detect || f.TimeToRecover.Valid != tt.recover || f.ObservedDowntime.Valid != tt.downtime {
				t.Fatalf("valid: detect %v recover %v downtime %v, want %v %v %v", f.TimeToDetect.Valid, f.TimeToRecover.Valid,
					f.ObservedDowntime.Valid, tt.detect, tt.recover, tt.downtime)
			}
		})
	}
}

func TestLatencyPercentilesUseNearestRank(t *testing.T) {
	r := &drill.Result{}
	for i := 100; i >= 1; i-- { // out of order on purpose
		r.Samples = append(r.Samples, sample(drill.PhaseLive, i, probe.OK, i, "v", "v"))
	}
	got := drill.ComputeFigures(r).Latency
	if want := (drill.LatencyStats{Count: 100, P50: ms(50), P95: ms(95), P99: ms(99), Max: ms(100)}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := drill.ComputeFigures(&drill.Result{}).Latency; got != (drill.LatencyStats{}) {
		t.Fatalf("no samples: %+v", got)
	}
}

// BenchmarkComputeFigures: a long drill at 100 ms probes (100k samples is ~2.8 hours).
func BenchmarkComputeFigures(b *testing.B) {
	r := &drill.Result{V: image("v2"), K: image("v1"), StopAt: at(3000 * time.Second), RollbackAt: at(6000 * time.Second)}
	const n = 100_000
	for i := range n {
		s := sample(drill.PhaseLive, i*100, probe.OK, 2+i%7, "v2", "v2")
		switch {
		case i >= 30_000 && i < 60_000:
			s.Phase, s.Outcome, s.Version = drill.PhaseOutage, probe.Refused, ""
		case i >= 60_000:
			s.Phase, s.Version, s.Want = drill.PhaseRecovery, "v1", "v1"
		}
		r.Samples = append(r.Samples, s)
	}
	b.ReportAllocs()
	for b.Loop() {
		drill.ComputeFigures(r)
	}
}
