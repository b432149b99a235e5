package report

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// Markdown renders summary.md: the verdict, the figures, each expectation and each phase. It is
// also what goes to the GitHub step summary, so it stands alone.
func Markdown(res *drill.Result, f drill.Figures, a Assessment) []byte {
	var b bytes.Buffer
	icon := "✅"
	if !passed(res, a) {
		icon = "❌"
	}
	fmt.Fprintf(&b, "## %s Deploy drill %s on `%s`\n\n", icon, strings.ToLower(verdict(res)), md(res.Target))
	switch {
	case res.V.Tag == "":
		b.WriteString("No version was deployed: the run stopped before **V** was published.")
	case !slices.ContainsFunc(res.Marks, func(m drill.Mark) bool { return m.Phase != drill.PhaseTeardown }):
		fmt.Fprintf(&b, "Published **V** `%s`; the drill did not start.", md(res.V.Tag))
	default:
		fmt.Fprintf(&b, "Deployed **V** `%s`", md(res.V.Tag))
		if res.K.Ref != "" {
			fmt.Fprintf(&b, ", rolled back to **K** `%s`: %s", md(res.K.Tag), md(res.Rollback.Reason))
		}
		b.WriteString(".")
	}
	if k := res.Config.Fault.Kind; k != "" && k != drill.FaultStop {
		fmt.Fprintf(&b, " Fault: **%s**.", md(res.Config.Fault.String()))
	}
	if res.RollbackTrigger != "" {
		fmt.Fprintf(&b, " Rollback trigger: %s.", md(res.RollbackTrigger))
	}
	b.WriteString("\n\n")
	if res.Error != "" {
		fmt.Fprintf(&b, "> **Error:** %s\n\n", md(res.Error))
	}
	if res.TeardownError != "" {
		fmt.Fprintf(&b, "> **Teardown error:** %s — resources may be left behind.\n\n", md(res.TeardownError))
	}
	if left := res.Teardown.Left; len(left) > 0 {
		fmt.Fprintf(&b, "> **May be left:** %s.", md(strings.Join(left, "; ")))
		if res.Teardown.Sweep != "" {
			fmt.Fprintf(&b, " Remove it with `%s`.", md(res.Teardown.Sweep))
		}
		b.WriteString("\n\n")
	}

	b.WriteString("| Figure | Value |\n|---|---|\n")
	fmt.Fprintf(&b, "| Time to detect (stop → first failed probe) | %s |\n", optHuman(f.TimeToDetect))
	fmt.Fprintf(&b, "| Time to recover (rollback start → K healthy) | %s |\n", optHuman(f.TimeToRecover))
	fmt.Fprintf(&b, "| Observed downtime (first failed → K healthy) | %s |\n", optHuman(f.ObservedDowntime))
	if f.Latency.Count > 0 {
		fmt.Fprintf(&b, "| Probe latency p50 / p95 / p99 (%d healthy probes) | %s / %s / %s |\n",
			f.Latency.Count, humanMS(f.Latency.P50), humanMS(f.Latency.P95), humanMS(f.Latency.P99))
	}
	fmt.Fprintf(&b, "| Probes | %d every %s, %d failed |\n", f.Probes, human(res.Config.Interval), f.Failed)
	if u := f.Users; u != nil {
		fmt.Fprintf(&b, "| Users' requests (--load %d/s) | %d sent, %d failed: %.2f%% user-facing errors; %d not sent (every client busy) |\n",
			res.Config.LoadRPS, u.Requests, u.Failed, 100*u.ErrorRate(), u.Skipped)
		if u.Latency.Count > 0 {
			fmt.Fprintf(&b, "| Users' latency p50 / p95 / p99 under load | %s / %s / %s |\n", humanMS(u.Latency.P50), humanMS(u.Latency.P95), humanMS(u.Latency.P99))
		}
		for _, p := range u.ByPhase {
			if p.Probes > p.Healthy {
				fmt.Fprintf(&b, "| Users' failures in %s | %d of %d: %s |\n", p.Phase, p.Probes-p.Healthy, p.Probes, outcomeMix(p.Outcomes))
			}
		}
	}
	if a.Budget != "" {
		fmt.Fprintf(&b, "| Error budget this downtime would use | %s |\n", md(a.Budget))
	}
	b.WriteString("\n")
	if a.Trend != "" {
		fmt.Fprintf(&b, "%s\n\n", md(a.Trend))
	}
	writeFleet(&b, res, f)
	if len(a.Gates) > 0 {
		b.WriteString("| | Gate | Verdict |\n|---|---|---|\n")
		for _, g := range a.Gates {
			icon := "✅"
			if !g.Passed {
				icon = "❌"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", icon, md(g.Name), md(g.Message))
		}
		b.WriteString("\n")
	}

	b.WriteString("| | Phase | Expectation | Detail |\n|---|---|---|---|\n")
	for _, e := range res.Expectations {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", statusIcon(e.Status), e.Phase, md(e.Name), md(e.Message))
	}
	b.WriteString("\n| Phase | Time | Probes | Healthy | Availability | Outcomes |\n|---|---:|---:|---:|---:|---|\n")
	avail := map[drill.Phase]drill.Availability{}
	for _, a := range f.Availability {
		avail[a.Phase] = a
	}
	for _, m := range res.Marks {
		a := avail[m.Phase]
		share := percent(a)
		if drill.StartUp(m.Phase) && a.Probes > 0 {
			share = "start-up" // probes until the version answers: not the service's availability
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s |\n", m.Phase, human(m.Duration()), a.Probes, a.Healthy, share, outcomeMix(a.Outcomes))
	}
	writeSteps(&b, res)
	if len(res.Warnings) > 0 {
		b.WriteString("\n**Warnings**\n\n")
		for _, w := range res.Warnings {
			fmt.Fprintf(&b, "- %s\n", md(w))
		}
	}
	return b.Bytes()
}

// writeSteps is where the time of the deploys and the stop went, as the target measured it.
func writeSteps(b *bytes.Buffer, res *drill.Result) {
	if len(res.Steps) == 0 {
		return
	}
	b.WriteString("\n| Phase | Where the time went |\n|---|---|\n")
	for _, p := range drill.Phases {
		steps := res.Steps[p]
		if len(steps) == 0 {
			continue
		}
		parts := make([]string, len(steps))
		for i, s := range steps {
			parts[i] = fmt.Sprintf("%s %s", md(s.Name), human(s.Took))
		}
		fmt.Fprintf(b, "| %s | %s |\n", p, strings.Join(parts, " · "))
	}
}

// writeFleet is a fleet's section: its shape, what the load balancer did with the faulty hosts,
// what users saw meanwhile, and each host.
func writeFleet(b *bytes.Buffer, res *drill.Result, f drill.Figures) {
	fl, ff := res.Fleet, f.Fleet
	if fl == nil || ff == nil {
		return
	}
	deploys := "all-at-once deploys (every host at once)"
	if fl.Rolling {
		deploys = "rolling deploys (one host at a time: deregister, drain, deploy, healthy)"
	}
	fmt.Fprintf(b, "**Fleet:** %d hosts behind `%s`, %s. Faulted: %s.\n\n", len(fl.Hosts), md(fl.Balancer), deploys, hostList(fl.Faulty))

	faulted := "the faulted host (fault → out of rotation)"
	if ff.FaultyHosts != 1 {
		faulted = fmt.Sprintf("the %d faulted hosts (fault → the last out of rotation)", ff.FaultyHosts)
	}
	outage, rollback := "not measured (no --load)", "not measured (no --load)"
	if f.Users != nil {
		outage = fmt.Sprintf("%s (%d of %d requests failed)", rate(ff.OutageFailed, ff.OutageRequests), ff.OutageFailed, ff.OutageRequests)
		icon := "✅"
		if ff.RollbackFailed > 0 {
			icon = "❌"
		}
		rollback = fmt.Sprintf("%s %d of %d", icon, ff.RollbackFailed, ff.RollbackRequests)
	}
	b.WriteString("| Figure | Value |\n|---|---|\n")
	fmt.Fprintf(b, "| Load balancer stopped routing to %s | %s |\n", faulted, optHuman(ff.OutOfRotation))
	fmt.Fprintf(b, "| Capacity during the outage (fewest hosts in rotation) | %s |\n", capacity(ff, ff.MinCapacity))
	fmt.Fprintf(b, "| Capacity during the rollback | %s |\n", capacity(ff, ff.RollbackMinCapacity))
	fmt.Fprintf(b, "| Users' error rate during the outage | %s |\n", outage)
	fmt.Fprintf(b, "| Users' failed requests during the rollback (goal 0) | %s |\n", rollback)

	_, live := res.Mark(drill.PhaseLive)
	b.WriteString("\n| Host | Faulted | Out of rotation after the fault | Back in rotation after the rollback started | In rotation from the live window on |\n|---|---|---:|---:|---:|\n")
	for _, h := range ff.PerHost {
		hit, out := "no", "stayed in" // as a host the fault did not hit should
		if h.Faulty {
			hit, out = "yes", "❌ never"
		}
		switch {
		case h.OutOfRotation.Valid && !h.Faulty:
			out = "❌ " + human(h.OutOfRotation.D)
		case h.OutOfRotation.Valid:
			out = human(h.OutOfRotation.D)
		case res.FaultAt.IsZero() || ff.MinCapacity < 0: // no fault, or no poll of the outage
			out = "not measured"
		}
		back := "not seen"
		switch {
		case h.BackInRotation.Valid:
			back = human(h.BackInRotation.D)
		case res.RollbackAt.IsZero():
			back = "not measured"
		}
		share := "-"
		if live {
			share = fmt.Sprintf("%.1f%%", 100*h.InRotation)
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", md(h.Host), hit, out, back, share)
	}
	b.WriteString("\n")
}

// hostList is hosts as code, comma-separated.
func hostList(hosts []string) string {
	if len(hosts) == 0 {
		return "none"
	}
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = "`" + md(h) + "`"
	}
	return strings.Join(out, ", ")
}

// rate is failed of n as a percentage, "-" of none.
func rate(failed, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(failed)/float64(n))
}

func statusIcon(s drill.Status) string {
	switch s {
	case drill.Passed:
		return "✅"
	case drill.Failed:
		return "❌"
	}
	return "⏭️"
}

// md keeps text from breaking a table or turning into markup.
func md(s string) string {
	return strings.NewReplacer("|", `\|`, "`", "'", "<", "&lt;", ">", "&gt;").Replace(oneLine(s))
}

// outcomeMix is "refused 7, ok 3", most frequent first.
func outcomeMix(mix map[probe.Outcome]int) string {
	outcomes := slices.SortedFunc(maps.Keys(mix), func(a, b probe.Outcome) int {
		if mix[a] != mix[b] {
			return mix[b] - mix[a]
		}
		return strings.Compare(string(a), string(b))
	})
	parts := make([]string, len(outcomes))
	for i, o := range outcomes {
		parts[i] = fmt.Sprintf("%s %d", o, mix[o])
	}
	return strings.Join(parts, ", ")
}
