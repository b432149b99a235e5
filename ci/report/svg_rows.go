package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

type bar struct {
	start, end time.Time
	ok         bool
	title      string
}

// bars is one bar per probe, one interval wide, or merged runs when there are too many.
func bars(res *drill.Result) []bar {
	interval := res.Config.Interval
	var out []bar
	for _, s := range res.Samples {
		b := bar{start: s.At, end: s.At.Add(interval), ok: s.OK()}
		if len(res.Samples) <= maxBars {
			b.title = probeTitle(res, s)
			out = append(out, b)
			continue
		}
		if n := len(out); n > 0 && out[n-1].ok == b.ok && !b.start.After(out[n-1].end) {
			out[n-1].end = b.end
			continue
		}
		out = append(out, b)
	}
	if len(res.Samples) > maxBars {
		for i := range out {
			verdict := "healthy"
			if !out[i].ok {
				verdict = "failed"
			}
			out[i].title = fmt.Sprintf("+%s to +%s: %s", human(out[i].start.Sub(res.Started)), human(out[i].end.Sub(res.Started)), verdict)
		}
	}
	return out
}

func probeTitle(res *drill.Result, s drill.Sample) string {
	t := fmt.Sprintf("+%s %s: %s in %s", human(s.At.Sub(res.Started)), s.Phase, s.Outcome, humanMS(s.Latency))
	if s.Version != "" {
		t += ", version " + s.Version
	}
	if s.Err != "" {
		t += ": " + oneLine(s.Err)
	}
	return t
}

// run is a stretch of a row in one state: a version that answered, a host as the load
// balancer saw it, the load balancer's capacity.
type run struct {
	start, end time.Time
	style      style
	label      string // inside the stretch, where it fits
	title      string // on hover
	healthy    int    // the capacity's: hosts in rotation
}

// style is how a state looks: its colour, and its name in the legend.
type style struct{ label, fill string }

// versionRuns are the stretches in which consecutive probes heard the same version.
func versionRuns(res *drill.Result, limit time.Time) []run {
	var out []run
	prev := ""
	for _, s := range res.Samples {
		if s.Version == "" {
			prev = ""
			continue
		}
		end := s.At.Add(res.Config.Interval)
		if end.After(limit) {
			end = limit
		}
		if s.Version == prev {
			out[len(out)-1].end = end
			continue
		}
		label := versionLabel(res, s.Version)
		fill := "#eaeef2"
		if s.Version == res.V.Version {
			fill = "#b6e3ff"
		} else if s.Version == res.K.Version {
			fill = "#e2d4fb"
		}
		out = append(out, run{start: s.At, end: end, style: style{fill: fill}, label: label, title: label})
		prev = s.Version
	}
	return out
}

// The load balancer's view of a host, in legend order: AWS's target health states as a reader
// of the drill needs them.
var (
	styleInRotation    = style{"in rotation", "#4ac26b"}
	styleInitial       = style{"initial", "#80ccff"}
	styleUnhealthy     = style{"unhealthy", "#ff8182"}
	styleDraining      = style{"draining", "#eac54f"}
	styleOther         = style{"unused / unavailable", "#afb8c1"} // registered, but neither checked nor in use
	styleNotRegistered = style{"not registered", "#d0d7de"}
	stylePollFailed    = style{"poll failed", "#57606a"}

	hostStyles = []style{styleInRotation, styleInitial, styleUnhealthy, styleDraining, styleOther, styleNotRegistered, stylePollFailed}
)

func hostStyle(state string) style {
	switch state {
	case "healthy":
		return styleInRotation
	case "initial":
		return styleInitial
	case "unhealthy":
		return styleUnhealthy
	case "draining":
		return styleDraining
	case "":
		return styleNotRegistered
	}
	return styleOther
}

// hostRuns are the stretches in which consecutive polls saw host in the same state.
func hostRuns(res *drill.Result, host string, limit time.Time) []run {
	return pollRuns(res, host, limit, func(p drill.HostSample) (run, string) {
		h := p.State(host)
		r, detail := run{style: hostStyle(h.State), label: h.State}, h.State
		switch {
		case h.State == "":
			r.label, detail = styleNotRegistered.label, styleNotRegistered.label
		case h.InRotation():
			r.label = styleInRotation.label
		}
		if h.Reason != "" {
			detail += " (" + h.Reason + ")"
		}
		return r, detail
	})
}

// capacityRuns are the stretches in which consecutive polls found the same hosts in rotation.
func capacityRuns(res *drill.Result, limit time.Time) []run {
	return pollRuns(res, "load balancer", limit, func(p drill.HostSample) (run, string) {
		var in []string
		for _, h := range p.Hosts {
			if h.InRotation() {
				in = append(in, h.Host)
			}
		}
		r := run{style: styleInRotation, healthy: len(in), label: fmt.Sprintf("%d/%d", len(in), len(res.Fleet.Hosts))}
		detail := r.label + " in rotation"
		if len(in) > 0 {
			detail += ": " + strings.Join(in, ", ")
		}
		return r, detail
	})
}

// pollRuns are the stretches of a fleet's row in which consecutive polls of the load balancer
// saw the same (see's detail of a poll that did not fail), titled "row +a to +b: detail". A
// poll stands for the time until the next one (the last: one probe interval), none past limit.
func pollRuns(res *drill.Result, row string, limit time.Time, see func(drill.HostSample) (run, string)) []run {
	samples := res.Fleet.Samples
	var out []run
	var details []string
	for i, p := range samples {
		end := p.At.Add(res.Config.Interval)
		if i+1 < len(samples) {
			end = samples[i+1].At
		}
		if end.After(limit) {
			end = limit
		}
		if !end.After(p.At) {
			continue
		}
		r, detail := run{style: stylePollFailed}, "poll failed: "+oneLine(p.Err)
		if p.Err == "" {
			r, detail = see(p)
		}
		if n := len(out); n > 0 && details[n-1] == detail {
			out[n-1].end = end
			continue
		}
		r.start, r.end = p.At, end
		out = append(out, r)
		details = append(details, detail)
	}
	for i := range out {
		out[i].title = fmt.Sprintf("%s %s: %s", row, stretch(res, out[i]), details[i])
	}
	return out
}

// stretch is when a run was, from the drill's start: "+12.0 s to +15.0 s".
func stretch(res *drill.Result, r run) string {
	return fmt.Sprintf("+%s to +%s", human(r.start.Sub(res.Started)), human(r.end.Sub(res.Started)))
}

var tickSteps = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute,
	2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}

func axis(w *svg, fr frame, t0, t1 time.Time, x func(time.Time) float64) {
	w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, num(fr.left), num(fr.axisY+0.5), num(plotRight), num(fr.axisY+0.5), colorMute)
	total := t1.Sub(t0)
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if total/s <= 10 {
			step = s
			break
		}
	}
	for d := time.Duration(0); d <= total; d += step {
		tx := x(t0.Add(d))
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, num(tx), num(fr.axisY), num(tx), num(fr.axisY+4), colorMute)
		w.p(`<text x="%s" y="%s" font-size="10" fill="%s" text-anchor="middle">%s</text>`, num(tx), num(fr.axisY+16), colorMute, tickLabel(d, step))
	}
}

func tickLabel(d, step time.Duration) string {
	switch {
	case step < time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < 2*time.Minute || d%time.Minute != 0 && step < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	}
	return strconv.Itoa(int(d.Minutes())) + "m"
}

// legend explains the probes and the marks, and on a second line the hosts' states that the
// fleet's rows show.
func legend(w *svg, fr frame, shown map[style]bool) {
	lx, y := fr.left, fr.legendY
	label := func(text string) {
		w.p(`<text x="%s" y="%s" font-size="11" fill="%s">%s</text>`, num(lx+16), num(y), colorText, text)
		lx += 16 + textWidth(text) + 18
	}
	swatch := func(color string) {
		w.p(`<rect x="%s" y="%s" width="10" height="10" fill="%s"/>`, num(lx), num(y-9), color)
	}
	rule := func(attrs string) {
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" %s/>`, num(lx), num(y-4), num(lx+10), num(y-4), colorText, attrs)
	}
	swatch(colorOK)
	label("healthy probe")
	swatch(colorFail)
	label("failed probe")
	rule(`stroke-dasharray="3 3"`)
	label("phase boundary")
	rule(`stroke-width="1.5"`)
	label("stop / rollback started")
	if len(shown) == 0 {
		return
	}
	lx, y = fr.left, y+legendGap
	for _, s := range hostStyles {
		if shown[s] {
			swatch(s.fill)
			label(s.label)
		}
	}
}
