package gitrev

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("init", "-q")
	write("app.py", "v1")
	write(".gitignore", "ignored/\n")
	run("add", ".")
	run("commit", "-q", "-m", "one")

	clean, err := Read(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if clean.Dirty || !regexp.MustCompile(`^[0-9a-f]{7}$`).MatchString(clean.Tag()) {
		t.Fatalf("a clean tree is tagged with its short SHA, got %+v tag %q", clean, clean.Tag())
	}

	os.Mkdir(filepath.Join(dir, "ignored"), 0o755)
	write("ignored/x", "noise")
	if rev, _ := Read(t.Context(), dir); rev.Dirty {
		t.Fatalf("ignored files do not make a tree dirty: %+v", rev)
	}

	write("app.py", "v2")
	dirty, err := Read(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !dirty.Dirty || dirty.Tag() == clean.Tag() || !regexp.MustCompile(`^[0-9a-f]{7}-dirty\.[0-9a-f]{7}$`).MatchString(dirty.Tag()) {
		t.Fatalf("a modified tree never claims the clean SHA, got tag %q", dirty.Tag())
	}

	write("app.py", "v3")
	other, _ := Read(t.Context(), dir)
	if other.Tag() == dirty.Tag() {
		t.Fatalf("different uncommitted changes get different tags, both %q", other.Tag())
	}

	write("app.py", "v1")
	write("new.py", "untracked")
	untracked, _ := Read(t.Context(), dir)
	if !untracked.Dirty {
		t.Fatal("an untracked file makes the tree dirty")
	}
}
