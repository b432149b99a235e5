package history_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/ci/history"
	"github.com/deploydrill/deploydrill/internal/golden"
)

func TestWriteTable(t *testing.T) {
	records := series(1200, 98000, -1)
	records[1].Target, records[1].Fault = "aws", "kill"
	records[2].Passed, records[2].ExitStatus, records[2].DowntimeMS, records[2].K = false, 1, nil, ""
	var b bytes.Buffer
	if err := history.WriteTable(&b, records); err != nil {
		t.Fatal(err)
	}
	want := `TIME                  TARGET  FAULT  V         K         TTD     TTR     DOWNTIME  PASSED
2025-03-01T09:00:00Z  local   stop   v0000001  k0000001  500 ms  1.2 s   1.7 s     yes
2025-03-02T09:00:00Z  aws     kill   v0000002  k0000002  500 ms  98.0 s  98.5 s    yes
2025-03-03T09:00:00Z  local   stop   v0000003  -         500 ms  -       -         no (exit 1)
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteJSON(t *testing.T) {
	tests := []struct {
		name    string
		records []history.Record
	}{
		{"no drills are an empty array", nil},
		{"drills are an array of records with their schema", series(1200, 900)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := history.WriteJSON(&b, tt.records); err != nil {
				t.Fatal(err)
			}
			var got []history.Record
			if err := json.Unmarshal(b.Bytes(), &got); err != nil || got == nil {
				t.Fatalf("not a JSON array (%v):\n%s", err, b.String())
			}
			want := []history.Record{}
			for _, r := range tt.records {
				r.Schema = history.Schema
				want = append(want, r)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// trendFixture is twelve drills with a slow one, a failed one and one that never recovered.
func trendFixture() []history.Record {
	records := series(1200, 1100, 1350, 1250, 2900, 1180, 1220, 1300, 1150, 1280, 1240, 1210)
	for i, ttd := range []float64{850, 900, 780, 1020, 860, 940, 880, 910, 870, 800, 830, 890} {
		records[i].TTDMS = history.Float(ttd)
	}
	records[4].Passed, records[4].ExitStatus = false, 1
	records[8].TTRMS = nil
	return records
}

func TestTrendSVGMatchesGolden(t *testing.T) {
	golden.Check(t, "testdata/trend.svg", history.TrendSVG(trendFixture()))
}

// svgElements parses doc as XML and returns its elements as name → attribute maps, failing
// on anything that is not well-formed.
func svgElements(t *testing.T, doc []byte) []struct {
	name  string
	attrs map[string]string
	text  string
} {
	t.Helper()
	type elem = struct {
		name  string
		attrs map[string]string
		text  string
	}
	var out []elem
	var open []int
	dec := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := elem{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
			open = append(open, len(out)-1)
		case xml.CharData:
			if len(open) > 0 {
				out[open[len(open)-1]].text += string(tok)
			}
		case xml.EndElement:
			open = open[:len(open)-1]
		}
	}
	if len(out) == 0 || out[0].name != "svg" {
		t.Fatal("the root element is not <svg>")
	}
	return out
}

func TestTrendSVGDrawsOnePointPerDrillPerSeries(t *testing.T) {
	tests := []struct {
		name     string
		records  []history.Record
		ttd, ttr int
		texts    []string
	}{
		{"twelve drills, one without a TTR", trendFixture(), 12, 11,
			[]string{"Deploy drill history · local · fault stop", "12 drills from 2025-03-01 to 2025-03-12, 1 failed",
				"TTR median 1.2 s, p90 1.4 s", "TTD median 875 ms", "milliseconds", "drill, oldest to newest",
				"TTD", "TTR", "median", "median to p90", "failed drill", "TTR p90 1.4 s"}},
		{"one drill", series(1200), 1, 1, []string{"1 drill on 2025-03-01", "TTR median 1.2 s, p90 1.2 s"}},
		{"no drills yet", nil, 0, 0, []string{"no drills recorded yet", "TTD and TTR per drill"}},
		{"names are escaped", func() []history.Record {
			r := series(1000)
			r[0].Target = `<a&b>`
			return r
		}(), 1, 1, []string{"<a&b>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := history.TrendSVG(tt.records)
			count := map[string]int{}
			var text strings.Builder
			for _, e := range svgElements(t, doc) {
				if e.name == "circle" && e.attrs["class"] != "" {
					count[e.attrs["class"]]++
					if e.attrs["cx"] == "" || e.attrs["cy"] == "" {
						t.Errorf("a point without a position: %v", e.attrs)
					}
				}
				text.WriteString(e.text + "\n")
			}
			if count["ttd"] != tt.ttd || count["ttr"] != tt.ttr {
				t.Errorf("%d TTD and %d TTR points, want %d and %d", count["ttd"], count["ttr"], tt.ttd, tt.ttr)
			}
			for _, w := range tt.texts {
				if !strings.Contains(text.String(), w) {
					t.Errorf("the chart does not say %q", w)
				}
			}
		})
	}
}
