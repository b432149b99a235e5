package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// gitApp makes a git repository holding a copy of the app with two commits and returns the app
// directory and both short SHAs, oldest first.
func gitApp(t *testing.T) (appDir, parent, head string) {
	t.Helper()
	repo := t.TempDir()
	appDir = filepath.Join(repo, "app")
	if out, err := exec.Command("cp", "-r", defaultAppDir(), appDir).CombinedOutput(); err != nil {
		t.Fatalf("copy the app: %v\n%s", err, out)
	}
	for _, junk := range []string{"__pycache__", ".pytest_cache", "tests/__pycache__"} {
		os.RemoveAll(filepath.Join(appDir, junk))
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "parent")
	parent = git("rev-parse", "--short=7", "HEAD")
	os.WriteFile(filepath.Join(repo, "CHANGELOG"), []byte("a change outside the app\n"), 0o644)
	git("add", ".")
	git("commit", "-q", "-m", "head")
	head = git("rev-parse", "--short=7", "HEAD")
	return appDir, parent, head
}

// The drills of a fresh clone, one after the other in one cache and one history, as a user
// runs them:
//  1. The first has no verified image but V: it builds the parent commit as K, proves it
//     healthy before V (the baseline), and rolls back from V's SHA to the parent's.
//  2. The next finds K verified in the inventory (no baseline, no build of K), rolls back to it
//     with --auto-rollback, and compares its TTR with the first drill's (--regress).
//  3. A third fails its --max-ttr gate: exit status 1, a failed JUnit case for the gate, the
//     error budget in the report.
//
// Then `history` shows the three records, as JSON, as a table and as a trend chart.
func TestLocalDrillsOfAFreshClone(t *testing.T) {
	t.Parallel()
	testenv.Dagger(t)
	appDir, parent, head := gitApp(t)
	cache, hist := t.TempDir(), filepath.Join(t.TempDir(), "history.jsonl")
	args := func(reportDir string, extra ...string) []string {
		return append([]string{
			"--app-dir", appDir, "--base-image", testenv.BaseImage(t), "--cache-dir", cache, "--report-dir", reportDir,
			"--listen", freePort(t), "--live", "2s", "--outage", "2s", "--recovery", "2s", "--interval", probeInterval,
			"--history", hist, "--slo", "99.9",
		}, extra...)
	}
	var dirs []string
	for range 3 {
		dirs = append(dirs, filepath.Join(t.TempDir(), "report"))
	}

	r := runDrillInProcess(t, args(dirs[0]))
	checkGroundTruth(t, r, dirs[0], head, parent, "git")
	first := readFullReport(t, dirs[0])
	if e := first.Expectations[0]; e.Phase != "baseline" || e.Status != "passed" {
		t.Errorf("first expectation %+v, want K's baseline passed", e)
	}
	if !first.VVerified {
		t.Error("V is not verified after a passed drill")
	}
	var baseline int
	for _, s := range first.Samples {
		if s.Phase == "baseline" && s.Version == parent {
			baseline++
		}
	}
	if baseline == 0 {
		t.Errorf("no probe saw K %s healthy in the baseline", parent)
	}

	// A regression gate that only a hang would fail (100× the first drill's TTR): the point is
	// the comparison the report makes, not the machine's speed.
	r = runDrillInProcess(t, args(dirs[1], "--auto-rollback", "--regress", "10000", "--regress-last", "1"))
	checkGroundTruth(t, r, dirs[1], head, parent, "verified")
	second := readFullReport(t, dirs[1])
	if second.Expectations[0].Phase == "baseline" {
		t.Error("the second drill verified K again")
	}
	if !strings.Contains(second.Trend, "TTR") {
		t.Errorf("second report's trend %q, want a comparison with the first drill", second.Trend)
	}

	var stdout, stderr bytes.Buffer
	release := drillSlot(t, 1)
	err := dispatch(t.Context(), args(dirs[2], "--max-ttr", "1ms", "--max-budget-use", "90"), &stdout, &stderr)
	release()
	if !errors.Is(err, errGatesFailed) {
		t.Fatalf("drill 3: err = %v, want the max-ttr gate to fail it\n%s", err, stderr.String())
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

	checkHistory(t, hist, dirs)
}

// checkHistory: `history` lists one record per drill, the last failed by its gate.
func checkHistory(t *testing.T, hist string, dirs []string) {
	t.Helper()
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
}
