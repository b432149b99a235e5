package report

import (
	"fmt"
	"strconv"
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

type versionRun struct {
	version    string
	start, end time.Time
}

// versionRuns are the stretches in which consecutive probes heard the same version.
func versionRuns(res *drill.Result, limit time.Time) []versionRun {
	var out []versionRun
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
		out = append(out, versionRun{s.Version, s.At, end})
		prev = s.Version
	}
	return out
}

var tickSteps = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute,
	2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}

func axis(w *svg, t0, t1 time.Time, x func(time.Time) float64) {
	w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, num(plotLeft), num(axisY+0.5), num(plotRight), num(axisY+0.5), colorMute)
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
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, num(tx), num(axisY), num(tx), num(axisY+4), colorMute)
		w.p(`<text x="%s" y="%s" font-size="10" fill="%s" text-anchor="middle">%s</text>`, num(tx), num(axisY+16), colorMute, tickLabel(d, step))
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

func legend(w *svg) {
	lx := plotLeft
	label := func(text string) {
		w.p(`<text x="%s" y="%s" font-size="11" fill="%s">%s</text>`, num(lx+16), num(legendY), colorText, text)
		lx += 16 + 6.5*float64(len(text)) + 18
	}
	swatch := func(color string) {
		w.p(`<rect x="%s" y="%s" width="10" height="10" fill="%s"/>`, num(lx), num(legendY-9), color)
	}
	rule := func(style string) {
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" %s/>`, num(lx), num(legendY-4), num(lx+10), num(legendY-4), colorText, style)
	}
	swatch(colorOK)
	label("healthy probe")
	swatch(colorFail)
	label("failed probe")
	rule(`stroke-dasharray="3 3"`)
	label("phase boundary")
	rule(`stroke-width="1.5"`)
	label("stop / rollback started")
}
