package drill

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/probe"
)

// expectUp checks that every probe of a window found img healthy, and reports whether it did.
func (r *run) expectUp(p Phase, img Image) bool {
	samples := phaseSamples(r.mon.since(0), p)
	if len(samples) == 0 {
		r.expect(p, Failed, "no probe completed in the %s window", p)
		return false
	}
	var bad []Sample
	for _, s := range samples {
		if !s.OK() {
			bad = append(bad, s)
		}
	}
	if len(bad) == 0 {
		r.expect(p, Passed, "all %d probes healthy with %s", len(samples), img.Tag)
		return true
	}
	start, _ := r.res.Mark(p)
	r.expect(p, Failed, "%d of %d probes failed (%s); the first %s into the window: %s",
		len(bad), len(samples), countOutcomes(bad), fmtDur(bad[0].At.Sub(start.Start)), describe(bad[0].Sample))
	return false
}

// expectSymptoms checks the outage against its fault's entry in the table: every probe after
// the fault took effect shows one of the fault's symptoms (a hang must time out, a stop must
// refuse), and a flapping fault fails at least once. An answer that is no symptom (ok from a
// stopped service, a refusal from a frozen one) fails the expectation.
func (r *run) expectSymptoms() {
	samples := phaseSamples(r.mon.since(0), PhaseOutage)
	if len(samples) == 0 {
		r.expect(PhaseOutage, Failed, "no probe completed after the fault")
		return
	}
	var other, failed []Sample
	for _, s := range samples {
		if !r.spec.expected(s.Outcome) {
			other = append(other, s)
		}
		if !s.OK() {
			failed = append(failed, s)
		}
	}
	want := make([]string, len(r.spec.symptoms))
	for i, o := range r.spec.symptoms {
		want[i] = string(o)
	}
	start, _ := r.res.Mark(PhaseOutage)
	switch {
	case len(other) > 0:
		r.expect(PhaseOutage, Failed, "%d of %d probes after %s did not show its symptoms (%s): %s; the first %s into the window: %s",
			len(other), len(samples), r.cfg.Fault.Kind, strings.Join(want, ", "), countOutcomes(other), fmtDur(other[0].At.Sub(start.Start)), describe(other[0].Sample))
	case len(failed) == 0:
		r.expect(PhaseOutage, Failed, "all %d probes after %s answered healthy: the fault had no effect", len(samples), r.cfg.Fault.Kind)
	default:
		r.expect(PhaseOutage, Passed, "all %d probes after %s showed its symptoms (%s)", len(samples), r.cfg.Fault.Kind, countOutcomes(samples))
	}
}

func phaseSamples(all []Sample, p Phase) []Sample {
	var out []Sample
	for _, s := range all {
		if s.Phase == p {
			out = append(out, s)
		}
	}
	return out
}

// countOutcomes is "refused ×3, timeout ×1", most frequent first.
func countOutcomes(samples []Sample) string {
	counts := map[probe.Outcome]int{}
	for _, s := range samples {
		counts[s.Outcome]++
	}
	outcomes := slices.SortedFunc(maps.Keys(counts), func(a, b probe.Outcome) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(string(a), string(b))
	})
	parts := make([]string, len(outcomes))
	for i, o := range outcomes {
		parts[i] = fmt.Sprintf("%s ×%d", o, counts[o])
	}
	return strings.Join(parts, ", ")
}

// fmtDur rounds a duration for messages: milliseconds below ten seconds, tenths above.
func fmtDur(d time.Duration) string {
	if d < 10*time.Second && d > -10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
