// Package golden compares test output with files under testdata and rewrites them when the test
// binary runs with -update. It owns the -update flag so that every test package shares one
// definition: a flag may be registered only once per test binary.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

// fullDumpLimit bounds the outputs printed whole on a mismatch; past it only the first differing
// line is shown, because a page of SVG helps nobody.
const fullDumpLimit = 2048

// Check fails t unless got equals the file at path. With -update it first writes got to path,
// creating missing directories, so a refresh is followed by the same comparison as any other run.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking the change):\n%s", path, Diff(got, want))
	}
}

// Diff describes how got differs from want: the first differing line, then both in full when they
// are short enough to read. It returns "" when they are equal.
func Diff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	var b strings.Builder
	for i := range max(len(g), len(w)) {
		gl, wl := "(end of file)", "(end of file)"
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, "line %d:\n got: %q\nwant: %q", i+1, gl, wl)
			break
		}
	}
	if len(got) <= fullDumpLimit && len(want) <= fullDumpLimit {
		fmt.Fprintf(&b, "\n--- got\n%s\n--- want\n%s", got, want)
	}
	return b.String()
}
