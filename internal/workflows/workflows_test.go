// Package workflows tests the GitHub Actions workflows in .github/workflows: actionlint (as a
// library) plus the project's own rules, so a broken workflow fails the test suite, not the
// first run on GitHub. (A Go package cannot live under .github: ./... skips dot directories.)
package workflows

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestWorkflowsPassActionlint(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Log("shellcheck not installed: run: scripts are not shell-checked here")
	}
	for _, w := range workflows(t) {
		t.Run(w.name, func(t *testing.T) {
			for _, err := range lint(t, w.path, w.content) {
				t.Error(err)
			}
		})
	}
}

// TestLintCatchesBrokenWorkflows breaks a real workflow one way at a time and expects the lint to
// say so; the unbroken files pass TestWorkflowsPassActionlint.
func TestLintCatchesBrokenWorkflows(t *testing.T) {
	for _, tc := range []struct {
		name, file, old, new, wantKind string
	}{
		{"an undefined context property is an error", "drill.yml",
			"name: drill-report-${{ github.run_id }}", "name: drill-report-${{ github.runid }}", "expression"},
		{"a type error in an expression is an error", "ci.yml",
			"cancel-in-progress: ${{ github.event_name == 'pull_request' }}", "cancel-in-progress: ${{ github.event_name }}", "expression"},
		{"broken YAML is an error", "ci.yml",
			"runs-on: ubuntu-latest", "runs-on: [ubuntu-latest", "syntax-check"},
		{"an unknown key is an error", "drill.yml",
			"    timeout-minutes: 55", "    timeout-minute: 55", "syntax-check"},
		{"an action on a tag instead of a SHA is an error", "drill.yml",
			"actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2", "actions/checkout@v6", "pinned-action"},
		{"a SHA without its release comment is an error", "ci.yml",
			"actions/setup-go@4b73464bb391d4059bd26b0524d20df3927bd417 # v6.3.0", "actions/setup-go@4b73464bb391d4059bd26b0524d20df3927bd417", "pinned-action"},
		{"a misspelt input of a pinned action is an error", "ci.yml",
			"go-version-file: go.mod", "go-version-fil: go.mod", "pinned-action"},
		{"a missing required input of a pinned action is an error", "drill.yml",
			"          aws-region: ${{ env.AWS_REGION }}\n", "", "pinned-action"},
		{"an expression in a run script is an error", "drill.yml",
			`run: go run ./ci sweep --run-id "$DRILL_RUN_ID"`, `run: go run ./ci sweep --run-id "${{ env.DRILL_RUN_ID }}"`, "run-script-expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := readWorkflow(t, tc.file)
			broken := mutate(t, w, tc.old, tc.new)
			errs := lint(t, w.path, broken)
			for _, err := range errs {
				if err.Kind == tc.wantKind {
					t.Logf("caught: %v", err)
					return
				}
			}
			t.Errorf("no %s error; got %v", tc.wantKind, errs)
		})
	}
}

// mutate replaces the one occurrence of old; a mutation that no longer applies fails, so the
// table cannot quietly turn into a test of an unbroken file.
func mutate(t *testing.T, w workflow, old, new string) []byte {
	t.Helper()
	if n := strings.Count(string(w.content), old); n != 1 {
		t.Fatalf("%s holds %q %d times, want once: update this case", w.name, old, n)
	}
	return []byte(strings.Replace(string(w.content), old, new, 1))
}

// engineVersion is the Dagger engine version dagger.json pins.
func engineVersion(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "dagger.json"))
	if err != nil {
		t.Fatalf("dagger.json: %v", err)
	}
	var cfg struct {
		EngineVersion string `json:"engineVersion"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("dagger.json: %v", err)
	}
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+$`).MatchString(cfg.EngineVersion) {
		t.Fatalf("dagger.json: engineVersion %q is not vX.Y.Z", cfg.EngineVersion)
	}
	return cfg.EngineVersion
}

// TestEngineVersionAgrees: the Go SDK and the engine the tests build are dagger.json's version,
// or the SDK and the engine disagree about the API. (drill.yml's CLI: TestDrillWorkflowPolicy.)
func TestEngineVersionAgrees(t *testing.T) {
	want := engineVersion(t)
	for _, tc := range []struct {
		name, file string
		version    *regexp.Regexp
	}{
		{"the Go SDK in go.mod is dagger.json's engine", "go.mod", regexp.MustCompile(`(?m)^\s*dagger\.io/dagger (v\S+)`)},
		{"the engine the tests build is dagger.json's engine", "hack/engine.sh", regexp.MustCompile(`(?m)^DAGGER_VERSION=(v\S+)$`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(repoRoot(t), tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m := tc.version.FindSubmatch(raw)
			if m == nil {
				t.Fatalf("%s: no version matching %s", tc.file, tc.version)
			}
			if got := string(m[1]); got != want {
				t.Errorf("%s pins %s, dagger.json %s", tc.file, got, want)
			}
		})
	}
}
