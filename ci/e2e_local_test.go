package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// drillReport is the part of report.json this test checks against ground truth.
type drillReport struct {
	Passed bool `json:"passed"`
	V, K   struct {
		Tag, Version string
	}
	Rollback struct {
		Kind string `json:"kind"`
	} `json:"rollback"`
	Config struct {
		Interval float64 `json:"probe_interval_ms"`
	} `json:"config"`
	Figures struct {
		Detect  *float64 `json:"time_to_detect_ms"`
		Recover *float64 `json:"time_to_recover_ms"`
	} `json:"figures"`
	Samples []struct {
		Phase   string `json:"phase"`
		Outcome string `json:"outcome"`
		Version string `json:"version"`
	} `json:"samples"`
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomVersion(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// drillArgs are a short drill into a private cache, so runs never see each other's images.
// The probe interval (and so the probe timeout) is 250 ms, not the 100 ms minimum: the suite
// runs packages in parallel on 2 cores, and a healthy answer slower than the timeout would fail
// the live window for the machine's sake, not the app's. The benchmark uses 100 ms.
func drillArgs(t *testing.T, cache, reportDir, version string, extra ...string) []string {
	return append([]string{
		"--base-image", testenv.BaseImage(t), "--cache-dir", cache, "--report-dir", reportDir,
		"--version", version, "--listen", freePort(t),
		"--live", "2s", "--outage", "2s", "--recovery", "2s", "--interval", "250ms",
	}, extra...)
}

func TestLocalDrillEndToEnd(t *testing.T) {
	testenv.Dagger(t) // fails in CI, skips elsewhere, when there is no engine
	cache := t.TempDir()

	// The first drill has nothing to roll back to: it re-creates V.
	first := randomVersion("e1")
	firstReport := runDrillInProcess(t, drillArgs(t, cache, filepath.Join(t.TempDir(), "r1"), first))
	if !firstReport.Passed || firstReport.Rollback.Kind != "recreate" || firstReport.K.Tag != first {
		t.Fatalf("first drill: passed=%v rollback=%s K=%s, want a passed re-create of %s", firstReport.Passed, firstReport.Rollback.Kind, firstReport.K.Tag, first)
	}

	// The second rolls back to the first, which the first drill verified.
	second := randomVersion("e2")
	dir := filepath.Join(t.TempDir(), "r2")
	r := runDrillInProcess(t, drillArgs(t, cache, dir, second, "--auto-rollback"))
	checkGroundTruth(t, r, dir, second, first, "verified")
}

func runDrillInProcess(t *testing.T, args []string) drillReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := dispatch(t.Context(), args, &stdout, &stderr)
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, stderr.String())
	}
	reportPath := ""
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.HasSuffix(line, "report.json") {
			reportPath = line
		}
	}
	if reportPath == "" {
		t.Fatalf("stdout names no report.json:\n%s", stdout.String())
	}
	return readReport(t, reportPath)
}

func readReport(t testing.TB, path string) drillReport {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r drillReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	return r
}

func checkGroundTruth(t *testing.T, r drillReport, dir, v, k, kind string) {
	t.Helper()
	if !r.Passed || r.V.Version != v || r.K.Version != k || r.Rollback.Kind != kind {
		t.Errorf("passed=%v V=%s K=%s rollback=%s, want V=%s rolled back (%s) to %s", r.Passed, r.V.Version, r.K.Version, r.Rollback.Kind, v, kind, k)
	}
	counts := map[string]int{}
	for _, s := range r.Samples {
		counts[s.Phase]++
		switch s.Phase {
		case "live":
			if s.Outcome != "ok" || s.Version != v {
				t.Errorf("live sample %s %q, want ok from %s", s.Outcome, s.Version, v)
			}
		case "outage":
			if s.Outcome == "ok" || s.Outcome == "wrong_version" {
				t.Errorf("outage sample answered: %s %q", s.Outcome, s.Version)
			}
		case "recovery":
			if s.Outcome != "ok" || s.Version != k {
				t.Errorf("recovery sample %s %q, want ok from %s", s.Outcome, s.Version, k)
			}
		}
	}
	for _, phase := range []string{"live", "outage", "recovery"} {
		if counts[phase] == 0 {
			t.Errorf("no samples in the %s window", phase)
		}
	}
	if r.Figures.Detect == nil || *r.Figures.Detect > 2*r.Config.Interval {
		t.Errorf("time to detect = %v ms, want within two probe intervals (%v ms)", r.Figures.Detect, 2*r.Config.Interval)
	}
	if r.Figures.Recover == nil {
		t.Error("no time to recover")
	}
	for _, name := range []string{"timeline.svg", "junit.xml"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(data, new(struct{})); err != nil {
			t.Errorf("%s does not parse: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.md")); err != nil {
		t.Error(err)
	}
}

// Under `dagger run` every Connect shares one session whose Close does nothing; the drill must
// still really stop V and start K.
func TestLocalDrillUnderDaggerRun(t *testing.T) {
	bin := os.Getenv("_EXPERIMENTAL_DAGGER_CLI_BIN")
	if bin == "" {
		testenv.Require(t, "the dagger CLI", "hack/engine.sh env sets _EXPERIMENTAL_DAGGER_CLI_BIN")
	}
	exe := filepath.Join(t.TempDir(), "drill")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cache, dir := t.TempDir(), filepath.Join(t.TempDir(), "report")
	v := randomVersion("dr")
	cmd := exec.CommandContext(t.Context(), bin, append([]string{"run", "--progress=plain", exe}, drillArgs(t, cache, dir, v)...)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dagger run drill: %v\n%s", err, out)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	t.Logf("drill under dagger run took %s", time.Since(start).Round(time.Millisecond))
	checkGroundTruth(t, r, dir, v, v, "recreate")
}

// Ctrl-C during the outage window: teardown completes, the report is written, exit status 130,
// and no process of the app is left.
func TestLocalDrillInterruptedDuringOutage(t *testing.T) {
	testenv.Dagger(t)
	exe := filepath.Join(t.TempDir(), "drill")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cache, dir := t.TempDir(), filepath.Join(t.TempDir(), "report")
	v := randomVersion("in")
	cmd := exec.CommandContext(t.Context(), exe, drillArgs(t, cache, dir, v, "--outage", "30s")...)
	stderr := &lineWatcher{want: " outage ", seen: make(chan struct{})}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stderr.seen:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("no outage phase within 3m:\n%s", stderr.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 130 {
		t.Errorf("exit = %v, want status 130\n%s", err, stderr.String())
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	if r.Passed {
		t.Error("an interrupted drill does not pass")
	}
	if !strings.Contains(stderr.String(), "passed: teardown releases everything") {
		t.Errorf("teardown did not complete:\n%s", stderr.String())
	}
	if pids := testenv.AppProcesses(v); len(pids) > 0 {
		t.Errorf("the app still runs after the interrupted drill: %v", pids)
	}
}

// lineWatcher collects output and signals once a line containing want appeared.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
