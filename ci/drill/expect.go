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

// expectDown checks that nothing answered /health after Stop returned: an answer from any version
// (ok or wrong_version) means something is still serving. Errors, refusals and timeouts are down.
func (r *run) expectDown() {
	samples := phaseSamples(r.mon.since(0), PhaseOutage)
	if len(samples) == 0 {
		r.expect(PhaseOutage, Failed, "no probe completed after stop")
		return
	}
	var answered []Sample
	for _, s := range samples {
		if s.Outcome == probe.OK || s.Outcome == probe.WrongVersion {
			answered = append(answered, s)
		}
	}
	if len(answered) == 0 {
		r.expect(PhaseOutage, Passed, "all %d probes failed after stop (%s)", len(samples), countOutcomes(samples))
		return
	}
	start, _ := r.res.Mark(PhaseOutage)
	r.expect(PhaseOutage, Failed, "%d of %d probes still answered after stop; the first %s into the window, version %q",
		len(answered), len(samples), fmtDur(answered[0].At.Sub(start.Start)), answered[0].Version)
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
