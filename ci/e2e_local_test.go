package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/report"
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

// testVersion names a test's drill after the test: unique among the tests that run side by side
// (their app processes are found by it), and the same on every run, so the engine's cache
// serves the build and the app's tests of an unchanged source instead of redoing them.
func testVersion(t testing.TB, prefix string) string {
	sum := sha256.Sum256([]byte(t.Name()))
	return prefix + hex.EncodeToString(sum[:4])
}

// randomVersion is a version no run has built before (benchmarks: a new V every drill).
func randomVersion(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// probeInterval is the e2e drills' probe interval, and so their probe timeout: the product's
// default. A healthy answer slower than the timeout fails a window for the machine's sake, not
// the app's, and the suite runs drills side by side (drillSlots) beside other packages on 2
// cores, where an answer through the engine's tunnel or the lab's veth, with the users' load
// on, was seen to take over 500 ms. A 2 s window still holds two probes; readiness (deploy,
// rollback) is probed every 50 ms whatever the interval. The benchmarks probe every 100 ms.
const probeInterval = "1s"

// drillArgs are a short drill into a private cache, so runs never see each other's images.
func drillArgs(t *testing.T, cache, reportDir, version string, extra ...string) []string {
	return append([]string{
		"--base-image", testenv.BaseImage(t), "--cache-dir", cache, "--report-dir", reportDir,
		"--version", version, "--listen", freePort(t),
		"--live", "2s", "--outage", "2s", "--recovery", "2s", "--interval", probeInterval,
	}, extra...)
}

func runDrillInProcess(t *testing.T, args []string) drillReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	release := drillSlot(t, 1)
	err := dispatch(t.Context(), args, &stdout, &stderr)
	release()
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
	checkDetected(t, readFullReport(t, dir))
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
// still really stop V and start K. Nothing is verified in its cache, so K is V re-created.
func TestLocalDrillUnderDaggerRun(t *testing.T) {
	t.Parallel()
	bin := os.Getenv("_EXPERIMENTAL_DAGGER_CLI_BIN")
	if bin == "" {
		testenv.Require(t, "the dagger CLI", "hack/engine.sh env sets _EXPERIMENTAL_DAGGER_CLI_BIN")
	}
	exe := drillBinary(t)
	cache, dir := t.TempDir(), filepath.Join(t.TempDir(), "report")
	v := testVersion(t, "dr")
	cmd := exec.CommandContext(t.Context(), bin, append([]string{"run", "--progress=plain", exe}, drillArgs(t, cache, dir, v)...)...)
	release := drillSlot(t, 1)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	release()
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
	t.Parallel()
	testenv.Dagger(t)
	cache, dir := t.TempDir(), filepath.Join(t.TempDir(), "report")
	v := testVersion(t, "in")
	p := startCLI(t, 1, nil, " outage ", drillArgs(t, cache, dir, v, "--outage", "30s")...)
	p.cmd.Process.Signal(os.Interrupt)
	if exit := p.wait(t); exit != 130 {
		t.Errorf("exit status %d, want 130\n%s", exit, p.stderr)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	if r.Passed {
		t.Error("an interrupted drill does not pass")
	}
	if !strings.Contains(p.stderr.String(), "passed: teardown releases everything") {
		t.Errorf("teardown did not complete:\n%s", p.stderr)
	}
	if pids := testenv.AppProcesses(v); len(pids) > 0 {
		t.Errorf("the app still runs after the interrupted drill: %v", pids)
	}
}

// checkDetected: the outage was seen no later than by the first probe that started once the
// fault was in effect (that probe failed, or an earlier one did), whatever the machine's speed.
// A crashloop answers between its crashes (on AWS the first comes an uptime after the fault,
// give or take the loop's own docker calls): it must have been seen, by any probe.
func checkDetected(t *testing.T, r report.Report) {
	t.Helper()
	if r.StopAt == nil || r.FaultAt == nil || r.Figures.TimeToDetectMS == nil {
		t.Fatalf("stop at %v, fault at %v, time to detect %v: want all three", r.StopAt, r.FaultAt, r.Figures.TimeToDetectMS)
	}
	if r.Config.Fault.Kind == "crashloop" {
		return
	}
	detected := r.StopAt.Add(time.Duration(*r.Figures.TimeToDetectMS * float64(time.Millisecond)))
	for _, s := range r.Samples {
		if s.At.Before(*r.FaultAt) {
			continue
		}
		if s.Outcome == "ok" {
			t.Errorf("the first probe after the fault was in effect answered ok (%s)", s.At)
		}
		if end := s.At.Add(time.Duration(s.LatencyMS*float64(time.Millisecond)) + time.Millisecond); detected.After(end) {
			t.Errorf("detected at %s, after the first probe since the fault ended (%s)", detected, end)
		}
		return
	}
	t.Error("no probe started after the fault was in effect")
}
