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
	// A fleet's rows go below the probes: one per host, then the load balancer's capacity.
	hostHeight = 16.0
	rowGap     = 4.0
	lbHeight   = 28.0
	legendGap  = 18.0 // between the legend's lines
	// maxBars is how many probes get a bar each; beyond it, runs of equal verdicts merge into
	// one bar, which looks the same and keeps the file small.
	maxBars = 2000
)

const (
	colorOK   = "#2da44e"
	colorFail = "#cf222e"
	colorText = "#24292f"
	colorMute = "#57606a"
	colorBand = "#f6f8fa" // behind a level: the load balancer's whole fleet
)

var phaseFill = map[drill.Phase]string{
	drill.PhaseBaseline: "#f6f8fa", drill.PhaseDeploy: "#ddf4ff", drill.PhaseLive: "#dafbe1", drill.PhaseStop: "#fff8c5", drill.PhaseOutage: "#ffebe9",
	drill.PhaseRollback: "#fff8c5", drill.PhaseRecovery: "#dafbe1", drill.PhaseTeardown: "#eaeef2",
}

// SVG renders timeline.svg: phases across the top, the versions that answered, one bar per
// probe (green healthy, red failed), the stop and rollback moments, a time axis and a legend.
// A fleet adds a row per host, coloured by the load balancer's view of it, and the load
// balancer's capacity. Hovering a bar or a stretch shows its details.
func SVG(res *drill.Result, f drill.Figures) []byte {
	t0, t1 := span(res)
	fr := newFrame(res.Fleet)
	scale := (plotRight - fr.left) / float64(t1.Sub(t0))
	x := func(t time.Time) float64 { return fr.left + scale*float64(t.Sub(t0)) }
	step := scale * float64(res.Config.Interval) // one probe interval in pixels

	var w svg
	title := fmt.Sprintf("Deploy drill %s on %s", verdict(res), res.Target)
	w.p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" role="img" aria-label="%s">`,
		svgWidth, fr.height, svgWidth, fr.height, esc(title))
	w.p(`<title>%s</title>`, esc(title))
	w.p(`<rect width="%d" height="%d" fill="#ffffff"/>`, svgWidth, fr.height)

	color := colorOK
	if !res.Passed() {
		color = colorFail
	}
	w.p(`<text x="16" y="24" font-size="16" font-weight="600" fill="%s">Deploy drill <tspan fill="%s">%s</tspan> · %s%s</text>`,
		colorText, color, verdict(res), esc(res.Target), failedTspan(res))
	w.p(`<text x="16" y="44" font-size="12" fill="%s">%s</text>`, colorMute, esc(headline(res, f)))

	labels := []rowLabel{{bandTop + 13, "phase", ""}, {verTop + 12, "version", ""}, {barTop + barHeight/2 + 4, "probes", ""}}
	if fl := res.Fleet; fl != nil {
		for i, h := range fl.Hosts {
			l := rowLabel{y: fr.hostTop(i) + hostHeight/2 + 4, text: h}
			if fl.IsFaulty(h) {
				l.mark = fmt.Sprintf(` <tspan fill="%s">%s</tspan>`, colorFail, faultedNote)
			}
			labels = append(labels, l)
		}
		labels = append(labels, rowLabel{fr.lbTop + lbHeight/2 + 4, "load balancer", ""})
	}
	for _, l := range labels {
		w.p(`<text x="%s" y="%s" font-size="11" fill="%s" text-anchor="end">%s%s</text>`, num(fr.left-8), num(l.y), colorMute, esc(l.text), l.mark)
	}

	for _, m := range res.Marks {
		x0, x1 := x(m.Start), x(m.End)
		w.p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s %s</title></rect>`,
			num(x0), num(bandTop), num(max(x1-x0, 0.5)), num(bandHeight), phaseFill[m.Phase], m.Phase, esc(human(m.Duration())))
		if fits(string(m.Phase), x1-x0) {
			w.p(`<text x="%s" y="%s" font-size="11" fill="%s" text-anchor="middle">%s</text>`, num((x0+x1)/2), num(bandTop+13), colorText, m.Phase)
		}
	}

	w.runs(x, verTop, verHeight, versionRuns(res, t1))

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

	shown := map[style]bool{} // the hosts' states the fleet's rows show, for the legend
	if fl := res.Fleet; fl != nil {
		for i, h := range fl.Hosts {
			runs := hostRuns(res, h, t1)
			w.runs(x, fr.hostTop(i), hostHeight, runs)
			for _, r := range runs {
				shown[r.style] = true
			}
		}
		capacityRow(&w, x, fr.lbTop, res, t1)
	}

	for _, m := range res.Marks[min(1, len(res.Marks)):] {
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="3 3"/>`, num(x(m.Start)), num(bandTop), num(x(m.Start)), num(fr.axisY), colorMute)
	}
	axis(&w, fr, t0, t1, x)
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
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5"/>`, num(lx), num(bandTop-4), num(lx), num(fr.markLabelY-10), colorText)
		w.p(`<text x="%s" y="%s" font-size="11" font-weight="600" fill="%s" text-anchor="%s">%s</text>`,
			num(lx+mk.dx), num(fr.markLabelY), colorText, mk.anchor, esc(label))
	}
	legend(&w, fr, shown)
	w.p(`</svg>`)
	return w.b.Bytes()
}

// frame is where the timeline's parts go. For one host it is the layout constants; a fleet
// widens the label column to fit its host ids and adds its rows below the probes, which moves
// the axis, the marks and the legend down and adds a legend line for the hosts' states.
type frame struct {
	left                       float64 // the plot's left edge: rows are labelled to its left
	lbTop                      float64 // the load balancer's row; the hosts' rows are above it
	axisY, markLabelY, legendY float64
	height                     int
}

func newFrame(fleet *drill.FleetResult) frame {
	fr := frame{left: plotLeft, axisY: axisY, markLabelY: markLabelY, legendY: legendY, height: svgHeight}
	if fleet == nil {
		return fr
	}
	for _, h := range fleet.Hosts {
		label := h
		if fleet.IsFaulty(h) {
			label += " " + faultedNote
		}
		fr.left = max(fr.left, 16+textWidth(label)+8)
	}
	fr.lbTop = fr.hostTop(len(fleet.Hosts))
	down := fr.lbTop + lbHeight - axisY
	fr.axisY += down
	fr.markLabelY += down
	fr.legendY += down
	fr.height += int(down + legendGap)
	return fr
}

// hostTop is the top of the row of the fleet's i-th host.
func (fr frame) hostTop(i int) float64 {
	return barTop + barHeight + rowGap + float64(i)*(hostHeight+rowGap)
}

// rowLabel names a row, left of the plot; mark is markup after the name.
type rowLabel struct {
	y          float64
	text, mark string
}

// faultedNote follows the id of a host the fault hit.
const faultedNote = "(faulted)"

// runs draws one row of stretches, each named inside where its name fits.
func (w *svg) runs(x func(time.Time) float64, top, height float64, runs []run) {
	for _, r := range runs {
		x0, x1 := x(r.start), x(r.end)
		w.p(`<rect x="%s" y="%s" width="%s" height="%s" rx="3" fill="%s"><title>%s</title></rect>`,
			num(x0), num(top), num(max(x1-x0, 1)), num(height), r.style.fill, esc(r.title))
		if fits(r.label, x1-x0) {
			w.p(`<text x="%s" y="%s" font-size="11" fill="%s" text-anchor="middle">%s</text>`, num((x0+x1)/2), num(top+height/2+4), colorText, esc(r.label))
		}
	}
}

// capacityRow draws the load balancer's row: over a pale band of the whole fleet, a step of how
// many hosts it routed to, "n/N" inside; a failed poll is a dark stretch.
func capacityRow(w *svg, x func(time.Time) float64, top float64, res *drill.Result, limit time.Time) {
	n := len(res.Fleet.Hosts)
	for _, r := range capacityRuns(res, limit) {
		x0, x1 := x(r.start), x(r.end)
		band := colorBand
		if r.style == stylePollFailed {
			band = r.style.fill
		}
		rect := func(y, height float64, fill string) {
			w.p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`, num(x0), num(y), num(max(x1-x0, 1)), num(height), fill, esc(r.title))
		}
		rect(top, lbHeight, band)
		if h := lbHeight * float64(r.healthy) / float64(max(n, 1)); h > 0 {
			rect(top+lbHeight-h, h, r.style.fill)
		}
		for _, label := range []string{r.label + " in rotation", r.label} {
			if r.label != "" && fits(label, x1-x0) {
				w.p(`<text x="%s" y="%s" font-size="11" fill="%s" text-anchor="middle">%s</text>`, num((x0+x1)/2), num(top+lbHeight/2+4), colorText, esc(label))
				break
			}
		}
	}
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
func fits(label string, width float64) bool { return label != "" && width >= textWidth(label)+6 }

// textWidth is about how wide text is at 11px.
func textWidth(text string) float64 { return 6.5 * float64(len([]rune(text))) }

func num(f float64) string { return strconv.FormatFloat(round(f, 1), 'f', -1, 64) }

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
