package report_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/internal/golden"
)

var files = []string{report.JSONFile, report.SummaryFile, report.JUnitFile, report.TimelineFile}

// The single-host goldens (passed, failed) predate fleets: a fleet's additions must leave them
// byte for byte as they were.
func TestWriteMatchesGoldenFiles(t *testing.T) {
	for name, res := range map[string]*drill.Result{"passed": passedResult(), "failed": failedResult(), "fleet": fleetResult()} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			paths, err := report.Write(dir, res, report.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, f := range files {
				want = append(want, filepath.Join(dir, f))
			}
			if !slices.Equal(paths, want) {
				t.Fatalf("paths %q, want %q", paths, want)
			}
			for _, f := range files {
				got, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				golden.Check(t, filepath.Join("testdata", name, f), got)
			}
		})
	}
}

func TestWriteReportsAFailedDrill(t *testing.T) {
	dir := t.TempDir()
	paths, err := report.Write(dir, failedResult(), report.Options{})
	if err != nil || len(paths) != len(files) {
		t.Fatalf("wrote %q, err %v: a failed drill needs its report most", paths, err)
	}
	var doc report.Report
	data, _ := os.ReadFile(filepath.Join(dir, report.JSONFile))
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Passed || doc.Error == "" || doc.Figures.TimeToRecoverMS != nil || doc.Expectations[4].Status != "not_run" {
		t.Errorf("report.json: passed %v, error %q, time to recover %v, recovery %s", doc.Passed, doc.Error, doc.Figures.TimeToRecoverMS, doc.Expectations[4].Status)
	}
	summary, _ := os.ReadFile(filepath.Join(dir, report.SummaryFile))
	for _, want := range []string{"❌ Deploy drill failed", "port 8080 in use", "| ⏭️ | recovery |", "not measured"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary.md lacks %q", want)
		}
	}
}

func TestWriteAppendsTheStepSummary(t *testing.T) {
	stepSummary := filepath.Join(t.TempDir(), "step_summary.md")
	if err := os.WriteFile(stepSummary, []byte("# Build\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := report.Write(t.TempDir(), passedResult(), report.Options{StepSummary: stepSummary}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(stepSummary)
	if !strings.HasPrefix(string(got), "# Build\n") || strings.Count(string(got), "✅ Deploy drill passed") != 2 {
		t.Fatalf("step summary:\n%s\nwant the earlier content kept and the summary appended twice", got)
	}
}

func TestWriteKeepsGoingWhenOneFileFails(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, report.JSONFile), 0o755); err != nil { // a directory in the way
		t.Fatal(err)
	}
	paths, err := report.Write(dir, passedResult(), report.Options{StepSummary: filepath.Join(dir, "missing", "summary.md")})
	if err == nil || !strings.Contains(err.Error(), report.JSONFile) || !strings.Contains(err.Error(), "append step summary") {
		t.Fatalf("err %v, want report.json and the step summary named", err)
	}
	if len(paths) != 3 {
		t.Fatalf("wrote %q, want the three other files", paths)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %q", leftovers)
	}
}

func TestWriteRefusesNoResult(t *testing.T) {
	if _, err := report.Write(t.TempDir(), nil, report.Options{}); err == nil {
		t.Fatal("no error for a nil result")
	}
}

func TestJSONCarriesEverySample(t *testing.T) {
	res := passedResult()
	data, err := report.JSON(res, drill.ComputeFigures(res), report.Assessment{})
	if err != nil {
		t.Fatal(err)
	}
	var doc report.Report
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != report.Schema || len(doc.Samples) != len(res.Samples) || len(doc.Phases) != len(res.Marks) {
		t.Fatalf("schema %q, %d samples, %d phases", doc.Schema, len(doc.Samples), len(doc.Phases))
	}
	if d := doc.Figures.TimeToDetectMS; d == nil || *d != 998 {
		t.Errorf("time to detect %v, want 998 ms (stop 12.003 s, refused at 13.001 s)", d)
	}
	if s := doc.Samples[13]; s.OffsetMS != 13000 || s.Outcome != "refused" || s.Phase != "outage" {
		t.Errorf("sample 13: %+v", s)
	}
}

// Every field of report.json is documented in SCHEMA.md.
func TestSchemaDocumentsEveryField(t *testing.T) {
	doc, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() {
			return
		}
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !strings.Contains(string(doc), "`"+name+"`") && !strings.Contains(string(doc), "`"+name+"[]`") {
				t.Errorf("%s.%s (%q) is not in SCHEMA.md", typ.Name(), f.Name, name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[report.Report]())
	if !strings.Contains(string(doc), report.Schema) {
		t.Errorf("SCHEMA.md does not name %s", report.Schema)
	}
}

// Where a deploy's and the stop's time went, as the target said, reaches the summary (one row a
// phase, in phase order) and report.json (each phase's steps); start-up phases show no
// availability: their probes wait for a version to come up.
func TestStepsAndStartUpPhases(t *testing.T) {
	res := passedResult()
	res.Steps = map[drill.Phase][]drill.Step{
		drill.PhaseRollback: {{Name: "container and tunnel", Took: ms(1200)}, {Name: "first healthy answer", Took: ms(300)}, {Name: "switch 127.0.0.1:8080 to it", Took: ms(1)}},
		drill.PhaseStop:     {{Name: "close 127.0.0.1:8080", Took: ms(1)}, {Name: "end the engine session", Took: ms(800)}},
	}
	f := drill.ComputeFigures(res)
	summary := string(report.Markdown(res, f, report.Assessment{}))
	stop := strings.Index(summary, "| stop | close 127.0.0.1:8080 1 ms · end the engine session 800 ms |")
	rollback := strings.Index(summary, "| rollback | container and tunnel 1.20 s · first healthy answer 300 ms · switch 127.0.0.1:8080 to it 1 ms |")
	if stop < 0 || rollback < stop {
		t.Errorf("summary has no step rows for stop then rollback:\n%s", summary)
	}
	for _, line := range strings.Split(summary, "\n") {
		if strings.HasPrefix(line, "| deploy | ") && strings.Contains(line, "%") {
			t.Errorf("the deploy row shows an availability: %s", line)
		}
	}
	data, err := report.JSON(res, f, report.Assessment{})
	if err != nil {
		t.Fatal(err)
	}
	var doc report.Report
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Phases {
		want := len(res.Steps[drill.Phase(p.Phase)])
		if len(p.Steps) != want {
			t.Errorf("phase %s: %d steps in report.json, want %d", p.Phase, len(p.Steps), want)
		}
	}
}
