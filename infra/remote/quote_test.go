package remote

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a plain word stays as it is", "docker", "docker"},
		{"a digest reference stays readable", "10.0.0.1:5000/app@sha256:abc", "10.0.0.1:5000/app@sha256:abc"},
		{"an empty argument survives as an empty word", "", "''"},
		{"spaces are quoted", "a b", "'a b'"},
		{"a single quote is closed, escaped and reopened", "it's", `'it'\''s'`},
		{"command substitution stays literal", "$(id)", "'$(id)'"},
		{"backticks stay literal", "`id`", "'`id`'"},
		{"a go template is one word", "{{json .State}}", "'{{json .State}}'"},
		{"an assignment-looking word is quoted", "A=b", "'A=b'"},
		{"a leading tilde is quoted", "~root", "'~root'"},
		{"a leading hash is quoted", "#x", "'#x'"},
		{"globs are quoted", "*", "'*'"},
		{"a newline stays inside quotes", "a\nb", "'a\nb'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestJoinRoundTripsThroughRealShells runs quoted lines through each shell a login shell may be
// and checks that the program receives exactly the original argv.
func TestJoinRoundTripsThroughRealShells(t *testing.T) {
	argvs := [][]string{
		{"plain", "words"},
		{"", "empty", ""},
		{"it's", `"double"`, `back\slash`, "$HOME", "$(touch /tmp/pwned)", "`id`", "a;b", "a&&b", "a|b", "!x", "~", "#c"},
		{"tab\there", "new\nline", "trailing space ", " leading", "ünïcödé", "\xff\xfe invalid utf-8"},
		{"*", "?", "[a]", "{a,b}", "a=b", "-n", "-e", "--", "%s", "'''", `'\''`},
	}
	for _, sh := range availableShells(t) {
		for _, argv := range argvs {
			if got := runThroughShell(t, sh, argv); !slices.Equal(got, argv) {
				t.Errorf("%s: argv %q arrived as %q (line %s)", sh, argv, got, Join(argv))
			}
		}
	}
}

func FuzzQuoteRoundTrip(f *testing.F) {
	for _, s := range []string{"", "'", `\'`, "$(id)", "a b", "\n", "'\"'\"'", "\x01\x7f"} {
		f.Add(s)
	}
	shells := availableShells(f)
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			return // argv cannot carry NUL; the Runner rejects it before sending
		}
		argv := []string{s, "x" + s + "x"}
		if got := runThroughShell(t, shells[0], argv); !slices.Equal(got, argv) {
			t.Errorf("argv %q arrived as %q (line %s)", argv, got, Join(argv))
		}
	})
}

func availableShells(tb testing.TB) []string {
	var shells []string
	for _, sh := range []string{"/bin/sh", "/bin/dash", "/bin/bash"} {
		if _, err := os.Stat(sh); err == nil {
			shells = append(shells, sh)
		}
	}
	if len(shells) == 0 {
		tb.Fatal("no POSIX shell found at /bin/sh, /bin/dash or /bin/bash")
	}
	return shells
}

func runThroughShell(t testing.TB, shell string, argv []string) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	line := "exec " + Join(append([]string{self}, argv...))
	cmd := exec.Command(shell, "-c", line)
	cmd.Env = append(os.Environ(), argvPrinterEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -c %s: %v", shell, line, err)
	}
	var raw [][]byte
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("decode argv %q: %v", out, err)
	}
	got := make([]string, len(raw))
	for i, a := range raw {
		got[i] = string(a)
	}
	return got
}
