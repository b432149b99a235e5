package history

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Layout of the trend chart, in pixels (the report's timeline is 1000 wide too).
const (
	trendWidth   = 1000
	trendHeight  = 400
	trendLeft    = 80.0
	trendRight   = 860.0 // median and p90 labels go to the right of it
	trendTop     = 64.0
	trendBottom  = 316.0
	trendPad     = 20.0 // between the axis ends and the first and last drill
	trendLegendY = 388.0
	// maxXLabels is how many drills at most get a label under the axis.
	maxXLabels = 12
)

const (
	colorText = "#24292f"
	colorMute = "#57606a"
	colorGrid = "#eaeef2"
)

// series is one figure drawn per drill.
type series struct {
	name  string // TTD, TTR
	class string // the circles' class: ttd, ttr
	color string
	get   func(Record) (time.Duration, bool)
}

var trendSeries = []series{
	{"TTD", "ttd", "#0969da", Record.TTD},
	{"TTR", "ttr", "#8250df", Record.TTR},
}

// TrendSVG renders the trend chart of records: TTD and TTR per drill (one point per drill
// whose figure was measured, oldest left, hollow when the drill failed), each series' median
// as a dashed line and its median-to-p90 band, with axes in milliseconds, a legend and a
// title. Hovering a point names the drill.
func TrendSVG(records []Record) []byte {
	records = slices.Clone(records)
	sortByTime(records)

	var w svgWriter
	title := trendTitle(records)
	w.p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" role="img" aria-label="%s">`,
		trendWidth, trendHeight, trendWidth, trendHeight, esc(title))
	w.p(`<title>%s</title>`, esc(title))
	w.p(`<rect width="%d" height="%d" fill="#ffffff"/>`, trendWidth, trendHeight)
	w.p(`<text x="16" y="24" font-size="16" font-weight="600" fill="%s">%s</text>`, colorText, esc(title))
	w.p(`<text x="16" y="44" font-size="12" fill="%s">%s</text>`, colorMute, esc(trendHeadline(records)))

	top, step := yScale(records)
	y := func(d time.Duration) float64 {
		return trendBottom - (trendBottom-trendTop)*float64(d)/float64(top)
	}
	x := func(i int) float64 {
		if len(records) == 1 {
			return (trendLeft + trendRight) / 2
		}
		return trendLeft + trendPad + (trendRight-trendLeft-2*trendPad)*float64(i)/float64(len(records)-1)
	}
	yAxis(&w, top, step, y)
	xAxis(&w, records, x)
	if len(records) == 0 {
		w.p(`<text x="%s" y="%s" font-size="13" fill="%s" text-anchor="middle">no drills recorded yet</text>`,
			num((trendLeft+trendRight)/2), num((trendTop+trendBottom)/2), colorMute)
	}

	var labels []sideLabel
	for _, s := range trendSeries {
		values := measured(records, s.get)
		if len(values) == 0 {
			continue
		}
		med, p90 := Median(values), Quantile(values, 0.9)
		w.p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s" fill-opacity="0.12"><title>%s median %s to p90 %s</title></rect>`,
			num(trendLeft), num(y(p90)), num(trendRight-trendLeft), num(max(y(med)-y(p90), 0.5)), s.color, s.name, esc(human(med)), esc(human(p90)))
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="6 4"/>`, num(trendLeft), num(y(med)), num(trendRight), num(y(med)), s.color)
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="1 3"/>`, num(trendLeft), num(y(p90)), num(trendRight), num(y(p90)), s.color)
		labels = append(labels, sideLabel{y(med), s.name + " median " + human(med), s.color}, sideLabel{y(p90), s.name + " p90 " + human(p90), s.color})
	}
	for _, l := range spread(labels, 13) {
		w.p(`<text x="%s" y="%s" font-size="11" fill="%s">%s</text>`, num(trendRight+8), num(l.y+4), l.color, esc(l.text))
	}

	radius := 4.0
	if len(records) > 40 {
		radius = max(1.5, 4-float64(len(records))/40) // dense histories stay a line of dots
	}
	for _, s := range trendSeries {
		var path strings.Builder
		pen := "M"
		for i, r := range records {
			d, ok := s.get(r)
			if !ok {
				pen = "M" // a gap where the figure was not measured
				continue
			}
			fmt.Fprintf(&path, "%s%s %s ", pen, num(x(i)), num(y(d)))
			pen = "L"
		}
		if path.Len() > 0 {
			w.p(`<path d="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-linejoin="round"/>`, strings.TrimSpace(path.String()), s.color)
		}
		for i, r := range records {
			d, ok := s.get(r)
			if !ok {
				continue
			}
			fill := s.color
			if !r.Passed {
				fill = "#ffffff"
			}
			w.p(`<circle class="%s" cx="%s" cy="%s" r="%s" fill="%s" stroke="%s" stroke-width="1.5"><title>%s</title></circle>`,
				s.class, num(x(i)), num(y(d)), num(radius), fill, s.color, esc(pointTitle(i, r, s.name, d)))
		}
	}
	trendLegend(&w)
	w.p(`</svg>`)
	return w.b.Bytes()
}

// trendTitle names what the records are drills of.
func trendTitle(records []Record) string {
	targets, faults := distinct(records, func(r Record) string { return r.Target }), distinct(records, func(r Record) string { return r.Fault })
	title := "Deploy drill history"
	if len(targets) > 0 {
		title += " · " + strings.Join(targets, ", ")
	}
	if len(faults) > 0 {
		title += " · fault " + strings.Join(faults, ", ")
	}
	return title
}

// trendHeadline is the figures in one line.
func trendHeadline(records []Record) string {
	if len(records) == 0 {
		return "TTD and TTR per drill"
	}
	failed := 0
	for _, r := range records {
		if !r.Passed {
			failed++
		}
	}
	first, last := records[0].At.UTC(), records[len(records)-1].At.UTC()
	parts := []string{fmt.Sprintf("%d drills from %s to %s", len(records), first.Format("2006-01-02"), last.Format("2006-01-02"))}
	if len(records) == 1 {
		parts[0] = "1 drill on " + first.Format("2006-01-02")
	}
	if failed > 0 {
		parts[0] += fmt.Sprintf(", %d failed", failed)
	}
	for _, s := range trendSeries {
		values := measured(records, s.get)
		if len(values) == 0 {
			parts = append(parts, s.name+" not measured")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s median %s, p90 %s", s.name, human(Median(values)), human(Quantile(values, 0.9))))
	}
	return strings.Join(parts, " · ")
}

func pointTitle(i int, r Record, figure string, d time.Duration) string {
	verdict := "passed"
	if !r.Passed {
		verdict = fmt.Sprintf("failed, exit %d", r.ExitStatus)
	}
	return fmt.Sprintf("#%d %s %s/%s, run %s, V %s: %s %s (%s)", i+1, r.At.UTC().Format("2006-01-02 15:04Z"), r.Target, r.Fault, r.RunID, r.V, figure, human(d), verdict)
}

// yScale is the top of the y axis and its tick spacing: a round number of milliseconds a
// little above every point.
func yScale(records []Record) (top, step time.Duration) {
	for _, s := range trendSeries {
		for _, d := range measured(records, s.get) {
			top = max(top, d)
		}
	}
	top += top / 20
	step = yStep(top)
	return max(step*time.Duration(math.Ceil(float64(top)/float64(step))), step), step
}

// yStep is a round tick spacing (1, 2 or 5 times a power of ten milliseconds) that gives at
// most eight ticks up to top.
func yStep(top time.Duration) time.Duration {
	for p := time.Millisecond; ; p *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			if top <= 8*m*p {
				return m * p
			}
		}
	}
}

func yAxis(w *svgWriter, top, step time.Duration, y func(time.Duration) float64) {
	for d := time.Duration(0); d <= top; d += step {
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, num(trendLeft), num(y(d)), num(trendRight), num(y(d)), colorGrid)
		w.p(`<text x="%s" y="%s" font-size="10" fill="%s" text-anchor="end">%s</text>`, num(trendLeft-6), num(y(d)+3), colorMute, strconv.FormatInt(d.Milliseconds(), 10))
	}
	w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, num(trendLeft), num(trendTop), num(trendLeft), num(trendBottom), colorMute)
	cy := (trendTop + trendBottom) / 2
	w.p(`<text x="24" y="%s" font-size="11" fill="%s" text-anchor="middle" transform="rotate(-90 24 %s)">milliseconds</text>`, num(cy), colorMute, num(cy))
}

func xAxis(w *svgWriter, records []Record, x func(int) float64) {
	w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, num(trendLeft), num(trendBottom+0.5), num(trendRight), num(trendBottom+0.5), colorMute)
	every := max(1, (len(records)+maxXLabels-1)/maxXLabels)
	for i, r := range records {
		if i%every != 0 && i != len(records)-1 {
			continue
		}
		if i == len(records)-1 && i%every != 0 && x(i)-x(i-i%every) < 40 {
			continue // the last label would sit on the one before it
		}
		tx := x(i)
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, num(tx), num(trendBottom), num(tx), num(trendBottom+4), colorMute)
		w.p(`<text x="%s" y="%s" font-size="10" fill="%s" text-anchor="middle">#%d</text>`, num(tx), num(trendBottom+16), colorMute, i+1)
		w.p(`<text x="%s" y="%s" font-size="10" fill="%s" text-anchor="middle">%s</text>`, num(tx), num(trendBottom+28), colorMute, r.At.UTC().Format("Jan 2"))
	}
	w.p(`<text x="%s" y="%s" font-size="11" fill="%s" text-anchor="middle">drill, oldest to newest</text>`, num((trendLeft+trendRight)/2), num(trendBottom+46), colorMute)
}

func trendLegend(w *svgWriter) {
	lx := trendLeft
	label := func(text string) {
		w.p(`<text x="%s" y="%s" font-size="11" fill="%s">%s</text>`, num(lx+22), num(trendLegendY), colorText, text)
		lx += 22 + 6.5*float64(len(text)) + 18
	}
	for _, s := range trendSeries {
		w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5"/>`, num(lx), num(trendLegendY-4), num(lx+16), num(trendLegendY-4), s.color)
		w.p(`<circle cx="%s" cy="%s" r="4" fill="%s"/>`, num(lx+8), num(trendLegendY-4), s.color)
		label(s.name)
	}
	w.p(`<circle cx="%s" cy="%s" r="4" fill="#ffffff" stroke="%s" stroke-width="1.5"/>`, num(lx+8), num(trendLegendY-4), colorMute)
	label("failed drill")
	w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="6 4"/>`, num(lx), num(trendLegendY-4), num(lx+16), num(trendLegendY-4), colorText)
	label("median")
	w.p(`<rect x="%s" y="%s" width="16" height="10" fill="%s" fill-opacity="0.25"/>`, num(lx), num(trendLegendY-9), colorMute)
	w.p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="1 3"/>`, num(lx), num(trendLegendY-9), num(lx+16), num(trendLegendY-9), colorText)
	label("median to p90")
}

// sideLabel is a label right of the plot at the height of its line.
type sideLabel struct {
	y     float64
	text  string
	color string
}

// spread moves labels apart so that none is closer than gap to the next, keeping them in
// the plot's height where it can.
func spread(labels []sideLabel, gap float64) []sideLabel {
	out := slices.Clone(labels)
	sort.SliceStable(out, func(i, j int) bool { return out[i].y < out[j].y })
	for i := 1; i < len(out); i++ {
		out[i].y = max(out[i].y, out[i-1].y+gap)
	}
	if n := len(out); n > 0 && out[n-1].y > trendBottom {
		shift := out[n-1].y - trendBottom
		for i := range out {
			out[i].y -= shift
		}
		for i := n - 2; i >= 0; i-- {
			out[i].y = min(out[i].y, out[i+1].y-gap)
		}
	}
	return out
}

func distinct(records []Record, key func(Record) string) []string {
	var out []string
	for _, r := range records {
		if k := key(r); k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

type svgWriter struct{ b bytes.Buffer }

func (w *svgWriter) p(format string, args ...any) {
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

func num(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
