package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

// Layout of the timeline, in pixels.
const (
	svgWidth   = 1000
	svgHeight  = 256
	plotLeft   = 80.0
	plotRight  = 980.0
	bandTop    = 60.0 // phases
	bandHeight = 18.0
	verTop     = 82.0 // versions seen
	verHeight  = 16.0
	barTop     = 102.0 // one bar per probe
	barHeight  = 80.0
	axisY      = 182.0
	markLabelY = 222.0
	legendY    = 244.0
	// maxBars is how many probes get a bar each; beyond it, runs of equal verdicts merge into
	// one bar, which looks the same and keeps the file small.
	maxBars = 2000
)

const (
	colorOK   = "#2da44e"
	colorFail = "#cf222e"
	colorText = "#24292f"
	colorMute = "#57606a"
)

var phaseFill = map[drill.Phase]string{
	drill.PhaseBaseline: "#f6f8fa", drill.PhaseDeploy: "#ddf4ff", drill.PhaseLive: "#dafbe1", drill.PhaseStop: "#fff8c5", drill.PhaseOutage: "#ffebe9",
	drill.PhaseRollback: "#fff8c5", drill.PhaseRecovery: "#dafbe1", drill.PhaseTeardown: "#eaeef2",
}

// SVG renders timeline.svg: phases across the top, the versions that answered, one bar per
// probe (green healthy, red failed), the stop and rollback moments, a time axis and a legend.
// Hovering a bar shows the probe's details.
func SVG(res *drill.Result, f drill.Figures) []byte {
	t0, t1 := span(res)
	scale := (plotRight - plotLeft) / float64(t1.Sub(t0))
	x := func(t time.Time) float64 { return plotLeft + scale*float64(t.Sub(t0)) }
	step := scale * float64(res.Config.Interval) // one probe interval in pixels

	var w svg
	title := fmt.Sprintf("Deploy drill %s on %s", verdict(res), res.Target)
	w.p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" role="img" aria-label="%s">`,
		svgWidth, svgHeight, svgWidth, svgHeight, esc(title))
	w.p(`<title>%s</title>`, esc(title))
	w.p(`<rect width="%d" height="%d" fill="#ffffff"/>`, svgWidth, svgHeight)

	color := colorOK
	if !res.Passed() {
		color = colorFail
	}
	w.p(`<text x="16" y="24" font-size="16" font-weight="600" fill="%s">Deploy drill <tspan fill="%s">%s</tspan> · %s%s</text>`,
		colorText, color, verdict(res), esc(res.Target), failedTspan(res))
	w.p(`<text x="16" y="44" font-size="12" fill="%s">%s</text>`, colorMute, esc(headline(res, f)))

	for _, l := range []struct {
		y    float64
		text string
	}{{bandTop + 13, "phase"}, {verTop + 12, "version"}, {barTop + barHeight/2 + 4, "probes"}} {
		w.p(`<text x="%s" y="%s" font-size="11" fill="%s" text-anchor="end">%s</text>`, num(plotLeft-8), num(l.y), colorMute, l.text)
	}

	for _, m := range res.Marks {
		x0, x1 := x(m.Start), x(m.End)
		w.p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s %s</title></rect>`,
			num(x0), num(bandTop), num(max(x1-x0, 0.5)), num(bandHeight), phaseFill[m.Phase], m.Phase, esc(human(m.Duration())))
		if fits(string(m.Phase), x1-x0) {
			w.p(`<text x="%s" y="%s" font-size="11" fill="%s" text-anchor="middle">%s</text>`, num((x0+x1)/2), num(bandTop+13), colorText, m.Phase)
		}
	}

	for _, r := range versionRuns(res, t1) {
		x0, x1 := x(r.start), x(r.end)
		label := versionLabel(res, r.version)
		fill := "#eaeef2"
		if r.version == res.V.Version {
			fill = "#b6e3ff"
		} else if r.version == res.K.Version {
			fill = "#e2d4fb"
		}
		w.p(`<rect x="%s" y="%s" width="%s" height="%s" rx="3" fill="%s"><title>%s</title></rect>`,
			num(x0), num(verTop), num(max(x1-x0, 1)), num(verHeight), fill, esc(label))
		if fits(label, x1-x0) {
			w.p(`<text x="%s" y="%s" font-size="11" fill="%s" text-anchor="middle">%s</text>`, num((x0+x1)/2), num(verTop+12), colorText, esc(label))
		}
	}

	gap := 0.0
	if step >= 4 {
		gap = 1
	}
	for _, b := range bars(res) {
		fill := colorOK
		if !b.ok {
			fill = colorFail
		}
		x0 := x(b.start)
		width := min(x(b.end), plotRight) - x0 - gap
		w.p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`,
			num(x0), num(barTop), num(max(width, 1)), num(barHeight), fill, esc(b.title))
	}

	for _, m := range res.Marks[min(1, len(res.Marks)):] {
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="3 3"/>`, num(x(m.Start)), num(bandTop), num(x(m.Start)), num(axisY), colorMute)
	}
	axis(&w, t0, t1, x)
	for _, mk := range []struct {
		at     time.Time
		label  string
		anchor string
		dx     float64
	}{{res.StopAt, "stop", "end", -4}, {res.RollbackAt, "rollback", "start", 4}} {
		if mk.at.IsZero() {
			continue
		}
		label := mk.label + " +" + human(mk.at.Sub(t0))
		lx := x(mk.at)
		if width := 7 * float64(len(label)); mk.anchor == "start" && lx+mk.dx+width > svgWidth || mk.anchor == "end" && lx+mk.dx-width < 0 {
			mk.anchor, mk.dx = map[string]string{"start": "end", "end": "start"}[mk.anchor], -mk.dx // keep it on the canvas
		}
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5"/>`, num(lx), num(bandTop-4), num(lx), num(markLabelY-10), colorText)
		w.p(`<text x="%s" y="%s" font-size="11" font-weight="600" fill="%s" text-anchor="%s">%s</text>`,
			num(lx+mk.dx), num(markLabelY), colorText, mk.anchor, esc(label))
	}
	legend(&w)
	w.p(`</svg>`)
	return w.b.Bytes()
}

// failedTspan names what failed, after the verdict.
func failedTspan(res *drill.Result) string {
	var failed []string
	for _, e := range res.Expectations {
		if e.Status == drill.Failed {
			failed = append(failed, string(e.Phase))
		}
	}
	if res.Error != "" && len(failed) == 0 {
		failed = append(failed, "error")
	}
	if len(failed) == 0 {
		return ""
	}
	return fmt.Sprintf(` <tspan font-size="12" font-weight="400" fill="%s">failed: %s</tspan>`, colorFail, esc(strings.Join(failed, ", ")))
}

// headline is the figures in one line.
func headline(res *drill.Result, f drill.Figures) string {
	parts := []string{"V " + res.V.Tag}
	if res.K.Ref != "" {
		parts[0] += " → K " + res.K.Tag
	}
	parts = append(parts, "detect "+optHuman(f.TimeToDetect), "recover "+optHuman(f.TimeToRecover), "downtime "+optHuman(f.ObservedDowntime))
	if f.Latency.Count > 0 {
		parts = append(parts, "latency p95 "+humanMS(f.Latency.P95))
	}
	parts = append(parts, fmt.Sprintf("%d probes every %s", f.Probes, human(res.Config.Interval)))
	return strings.Join(parts, " · ")
}

// span is the time the timeline covers: the whole drill, and at least a second.
func span(res *drill.Result) (time.Time, time.Time) {
	t0, t1 := res.Started, res.Ended
	for _, s := range res.Samples {
		if t0.IsZero() || s.At.Before(t0) {
			t0 = s.At
		}
		if end := s.Observed(); end.After(t1) {
			t1 = end
		}
	}
	if t1.Sub(t0) < time.Second {
		t1 = t0.Add(time.Second)
	}
	return t0, t1
}

type svg struct{ b bytes.Buffer }

func (w *svg) p(format string, args ...any) {
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

// fits reports whether label fits in width pixels at 11px.
func fits(label string, width float64) bool { return width >= 6.5*float64(len([]rune(label)))+6 }

func num(f float64) string { return strconv.FormatFloat(round(f, 1), 'f', -1, 64) }

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
