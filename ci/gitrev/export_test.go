package gitrev

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestExportWritesTheCommitsTreeNotTheWorkTree(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	app := filepath.Join(dir, "app")
	os.MkdirAll(filepath.Join(app, "tests"), 0o755)
	os.WriteFile(filepath.Join(app, "app.py"), []byte("one"), 0o644)
	os.WriteFile(filepath.Join(app, "tests", "t.py"), []byte("test one"), 0o644)
	os.WriteFile(filepath.Join(dir, "README"), []byte("outside app"), 0o644)
	run("init", "-q")
	run("add", ".")
	run("commit", "-q", "-m", "one")
	first := run("rev-parse", "HEAD")
	os.WriteFile(filepath.Join(app, "app.py"), []byte("two"), 0o644)
	run("commit", "-q", "-am", "two")
	os.WriteFile(filepath.Join(app, "app.py"), []byte("dirty"), 0o644) // uncommitted

	parent, err := Commit(t.Context(), app, "HEAD^")
	if err != nil || parent.SHA != first || parent.Dirty {
		t.Fatalf("Commit(HEAD^) = %+v, %v; want the first commit %s, clean", parent, err, first)
	}
	if short, err := Commit(t.Context(), app, first[:7]); err != nil || short.SHA != first {
		t.Errorf("a short SHA resolves: %+v %v", short, err)
	}
	if _, err := Commit(t.Context(), app, "HEAD~5"); err == nil || !strings.Contains(err.Error(), "not a commit") {
		t.Errorf("a missing revision: %v", err)
	}
	dest := t.TempDir()
	if err := Export(t.Context(), app, parent.SHA, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "app.py")); string(got) != "one" {
		t.Errorf("app.py = %q, want the first commit's", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "tests", "t.py")); string(got) != "test one" {
		t.Errorf("tests/t.py = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dest, "README")); err == nil {
		t.Error("a file outside the app directory was exported")
	}
	if got, _ := os.ReadFile(filepath.Join(app, "app.py")); string(got) != "dirty" {
		t.Errorf("the work tree changed: app.py = %q", got)
	}
}
