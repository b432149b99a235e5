package report_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
	"github.com/deploydrill/deploydrill/ci/report"
)

// svgDoc is the part of timeline.svg a reader (or a viewer) depends on.
type svgDoc struct {
	XMLName xml.Name  `xml:"http://www.w3.org/2000/svg svg"`
	Width   string    `xml:"width,attr"`
	Title   string    `xml:"title"`
	Rects   []svgRect `xml:"rect"`
	Texts   []string  `xml:"text"`
	Lines   []struct {
		Dash string `xml:"stroke-dasharray,attr"`
	} `xml:"line"`
}

type svgRect struct {
	Fill  string `xml:"fill,attr"`
	Title string `xml:"title"`
}

func parseSVG(t *testing.T, data []byte) svgDoc {
	t.Helper()
	var doc svgDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("timeline.svg does not parse: %v", err)
	}
	return doc
}

func TestSVGParsesAndShowsEveryProbe(t *testing.T) {
	for name, res := range map[string]*drill.Result{"passed": passedResult(), "failed": failedResult()} {
		t.Run(name, func(t *testing.T) {
			doc := parseSVG(t, report.SVG(res, drill.ComputeFigures(res)))
			var green, red int
			for _, r := range doc.Rects {
				switch r.Fill {
				case "#2da44e":
					green++
				case "#cf222e":
					red++
				}
			}
			var ok, failed int
			for _, s := range res.Samples {
				if s.OK() {
					ok++
				} else {
					failed++
				}
			}
			// One bar per probe, plus one swatch of each colour in the legend.
			if green != ok+1 || red != failed+1 {
				t.Errorf("%d green and %d red rects, want %d and %d", green, red, ok+1, failed+1)
			}
			text := strings.Join(doc.Texts, "\n")
			for _, want := range []string{"V a1b2c3d", "stop +12.0 s", "rollback +", "live", "outage", "healthy probe", "failed probe", "phase boundary"} {
				if !strings.Contains(text, want) {
					t.Errorf("no text %q in the timeline", want)
				}
			}
			if !strings.Contains(doc.Title, "Deploy drill") {
				t.Errorf("title %q", doc.Title)
			}
		})
	}
}

func TestSVGEscapesWhatTheServiceSays(t *testing.T) {
	res := passedResult()
	res.Samples[5].Version = `<script>alert("x")</script>&`
	res.Samples[5].Err = `bad ]]> <body>`
	res.Target = `a&b<c>`
	data := report.SVG(res, drill.ComputeFigures(res))
	parseSVG(t, data)
	if bytes.Contains(data, []byte("<script>")) {
		t.Fatal("a version string reached the SVG unescaped")
	}
}

func TestSVGMergesBarsForLongDrills(t *testing.T) {
	res := passedResult()
	res.Config.Interval = 100 * time.Millisecond
	res.Samples = nil
	for i := range 20_000 { // 2000 s at 100 ms
		o := probe.OK
		if i >= 5000 && i < 5030 {
			o = probe.Refused
		}
		res.Samples = append(res.Samples, drill.Sample{Phase: drill.PhaseLive, Want: "a1b2c3d",
			Sample: probe.Sample{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Outcome: o, Version: "a1b2c3d", Latency: time.Millisecond}})
	}
	res.Ended = t0.Add(2000 * time.Second)
	data := report.SVG(res, drill.ComputeFigures(res))
	doc := parseSVG(t, data)
	var bars int
	for _, r := range doc.Rects {
		if r.Fill == "#2da44e" || r.Fill == "#cf222e" {
			bars++
		}
	}
	if bars != 3+2 { // ok, refused, ok; plus the legend
		t.Errorf("%d bars, want 3 merged runs and 2 legend swatches", bars)
	}
	if len(data) > 20_000 {
		t.Errorf("timeline is %d bytes for 20000 probes, want it small", len(data))
	}
}

// junitDoc is what CI test reporters read from junit.xml.
type junitDoc struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Tests int    `xml:"tests,attr"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
		SystemOut string `xml:"system-out"`
	} `xml:"testsuite"`
}

func TestJUnitParsesWithOneCasePerExpectation(t *testing.T) {
	res := failedResult()
	data, err := report.JUnit(res, drill.ComputeFigures(res), report.Assessment{})
	if err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	if doc.Tests != 6 || doc.Failures != 2 || doc.Skipped != 1 || len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != 6 {
		t.Fatalf("tests %d failures %d skipped %d suites %d", doc.Tests, doc.Failures, doc.Skipped, len(doc.Suites))
	}
	for i, c := range doc.Suites[0].Cases {
		e := res.Expectations[i]
		if c.Name != e.Name || c.Classname != "deploydrill."+string(e.Phase) {
			t.Errorf("case %d: %s / %s, want %s / deploydrill.%s", i, c.Classname, c.Name, e.Name, e.Phase)
		}
		if (c.Failure != nil) != (e.Status == drill.Failed) || (c.Skipped != nil) != (e.Status == drill.NotRun) {
			t.Errorf("case %s: failure %v skipped %v for status %s", c.Name, c.Failure != nil, c.Skipped != nil, e.Status)
		}
	}
	outage := doc.Suites[0].Cases[2].Failure
	if outage == nil || !strings.Contains(outage.Text, "+13.0 s ok version a1b2c3d") {
		t.Errorf("outage failure %+v, want the probes that still answered listed", outage)
	}
	if !strings.Contains(doc.Suites[0].SystemOut, "time to detect 4.00 s") {
		t.Errorf("system-out %q", doc.Suites[0].SystemOut)
	}
}

func TestJUnitSurvivesCDATATerminatorsInMessages(t *testing.T) {
	res := failedResult()
	res.Expectations[2].Message = "answered ]]> <x> & done"
	data, err := report.JUnit(res, drill.ComputeFigures(res), report.Assessment{})
	if err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	if got := doc.Suites[0].Cases[2].Failure.Text; !strings.HasPrefix(got, "answered ]]> <x> & done") {
		t.Errorf("failure text %q", got)
	}
}

// BenchmarkReport: 100k probes, a 2.8-hour drill at 100 ms.
func BenchmarkReport(b *testing.B) {
	res := passedResult()
	res.Config.Interval = 100 * time.Millisecond
	res.Samples = nil
	for i := range 100_000 {
		res.Samples = append(res.Samples, drill.Sample{Phase: drill.PhaseLive, Want: "a1b2c3d",
			Sample: probe.Sample{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Outcome: probe.OK, Version: "a1b2c3d", Latency: time.Duration(1+i%5) * time.Millisecond}})
	}
	res.Ended = t0.Add(10_000 * time.Second)
	f := drill.ComputeFigures(res)
	for _, r := range []struct {
		name   string
		render func() ([]byte, error)
	}{
		{"json", func() ([]byte, error) { return report.JSON(res, f, report.Assessment{}) }},
		{"markdown", func() ([]byte, error) { return report.Markdown(res, f, report.Assessment{}), nil }},
		{"junit", func() ([]byte, error) { return report.JUnit(res, f, report.Assessment{}) }},
		{"svg", func() ([]byte, error) { return report.SVG(res, f), nil }},
	} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				data, err := r.render()
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
	b.Run("write", func(b *testing.B) {
		dir := b.TempDir()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := report.Write(dir, res, report.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
