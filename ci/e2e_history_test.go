package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// Three local drills append three records; `history` shows them; a gate fails the third, with
// exit status 1, a failed JUnit case for the gate and the budget in the summary.
func TestLocalDrillHistoryAndGates(t *testing.T) {
	testenv.Dagger(t)
	cache := t.TempDir()
	hist := filepath.Join(t.TempDir(), "history.jsonl")
	var dirs []string
	for i, extra := range [][]string{
		{"--slo", "99.9"},
		{"--slo", "99.9", "--regress", "500", "--regress-last", "1"},
		{"--slo", "99.9", "--max-ttr", "1ms", "--max-budget-use", "90"},
	} {
		dir := filepath.Join(t.TempDir(), "report")
		dirs = append(dirs, dir)
		args := append(drillArgs(t, cache, dir, randomVersion("h")), append([]string{"--history", hist}, extra...)...)
		var stdout, stderr bytes.Buffer
		err := dispatch(t.Context(), args, &stdout, &stderr)
		if i < 2 && err != nil {
			t.Fatalf("drill %d: %v\n%s", i+1, err, stderr.String())
		}
		if i == 2 && !errors.Is(err, errGatesFailed) {
			t.Fatalf("drill 3: err = %v, want the max-ttr gate to fail it\n%s", err, stderr.String())
		}
	}

	var out bytes.Buffer
	if err := dispatch(t.Context(), []string{"history", "--history", hist, "--json"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	var records []struct {
		Passed     bool     `json:"passed"`
		ExitStatus int      `json:"exit_status"`
		TTR        *float64 `json:"ttr_ms"`
		Report     string   `json:"report"`
	}
	if err := json.Unmarshal(out.Bytes(), &records); err != nil {
		t.Fatal(err)
	}
	if len(records) != 3 || !records[0].Passed || !records[1].Passed || records[2].Passed || records[2].ExitStatus != 1 {
		t.Fatalf("records %+v, want two passed drills and a third failed by its gate", records)
	}
	for i, r := range records {
		if r.TTR == nil || r.Report != filepath.Join(dirs[i], "report.json") {
			t.Errorf("record %d: ttr %v report %q", i+1, r.TTR, r.Report)
		}
	}
	out.Reset()
	svg := filepath.Join(t.TempDir(), "trend.svg")
	if err := dispatch(t.Context(), []string{"history", "--history", hist, "--svg", svg}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 4 {
		t.Errorf("history table has %d lines, want a header and 3 drills:\n%s", len(lines), out.String())
	}
	if data, err := os.ReadFile(svg); err != nil || xml.Unmarshal(data, new(struct{})) != nil {
		t.Errorf("trend chart: %v", err)
	}

	third := readFullReport(t, dirs[2])
	if third.Passed || !strings.Contains(third.ErrorBudget, "of 43.2 min") {
		t.Errorf("third report: passed %v, budget %q", third.Passed, third.ErrorBudget)
	}
	gates := map[string]bool{}
	for _, g := range third.Gates {
		gates[g.Name] = g.Passed
	}
	if passed, ok := gates["max-ttr"]; !ok || passed {
		t.Errorf("gates %+v, want max-ttr failed", third.Gates)
	}
	junit, _ := os.ReadFile(filepath.Join(dirs[2], "junit.xml"))
	if !strings.Contains(string(junit), `name="max-ttr"`) || !strings.Contains(string(junit), `type="gate"`) {
		t.Errorf("junit.xml has no failed max-ttr case:\n%s", junit)
	}
	if second := readFullReport(t, dirs[1]); !strings.Contains(second.Trend, "TTR") {
		t.Errorf("second report's trend %q, want a comparison with the first drill", second.Trend)
	}
}
