package main

import (
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

// The first drill of a fresh clone has no verified image but V: it builds the parent commit as
// K, proves it healthy before V, and rolls back from V's SHA to the parent's.
func TestLocalFirstDrillRollsBackToTheParentCommit(t *testing.T) {
	testenv.Dagger(t)
	appDir, parent, head := gitApp(t)
	cache, dir := t.TempDir(), filepath.Join(t.TempDir(), "report")
	args := []string{
		"--app-dir", appDir, "--base-image", testenv.BaseImage(t), "--cache-dir", cache, "--report-dir", dir,
		"--listen", freePort(t), "--live", "2s", "--outage", "2s", "--recovery", "2s", "--interval", "250ms",
	}
	r := runDrillInProcess(t, args)
	checkGroundTruth(t, r, dir, head, parent, "git")
	full := readFullReport(t, dir)
	if e := full.Expectations[0]; e.Phase != "baseline" || e.Status != "passed" {
		t.Errorf("first expectation %+v, want K's baseline passed", e)
	}
	if !full.VVerified {
		t.Error("V is not verified after a passed drill")
	}
	var baseline int
	for _, s := range full.Samples {
		if s.Phase == "baseline" && s.Version == parent {
			baseline++
		}
	}
	if baseline == 0 {
		t.Errorf("no probe saw K %s healthy in the baseline", parent)
	}

	// The next drill of the same commit finds K verified in the inventory: no baseline, no build.
	dir2 := filepath.Join(t.TempDir(), "report")
	args[7] = dir2
	args[9] = freePort(t)
	r2 := runDrillInProcess(t, args)
	if r2.K.Tag != parent || r2.Rollback.Kind != "verified" {
		t.Errorf("second drill: K %s (%s), want the verified parent %s", r2.K.Tag, r2.Rollback.Kind, parent)
	}
	if e := readFullReport(t, dir2).Expectations[0]; e.Phase == "baseline" {
		t.Error("the second drill verified K again")
	}
}
