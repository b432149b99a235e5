package workflows

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// workflow is one file of .github/workflows.
type workflow struct {
	name, path string
	content    []byte
}

// repoRoot is the module root: this package sits two levels below it.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// workflows reads every workflow file; none at all is a failure, not a vacuous pass.
func workflows(t *testing.T) []workflow {
	t.Helper()
	dir := filepath.Join(repoRoot(t), ".github", "workflows")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read workflows: %v", err)
	}
	var out []workflow
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yml") || strings.HasSuffix(e.Name(), ".yaml")) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		content, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, workflow{name: e.Name(), path: path, content: content})
	}
	if len(out) == 0 {
		t.Fatalf("no workflow files in %s", dir)
	}
	return out
}

// readWorkflow reads one workflow by file name.
func readWorkflow(t *testing.T, name string) workflow {
	t.Helper()
	for _, w := range workflows(t) {
		if w.name == name {
			return w
		}
	}
	t.Fatalf("no .github/workflows/%s", name)
	return workflow{}
}

// lint runs actionlint with the project's own rules on content, reported as if it were path.
// shellcheck checks run: scripts where it is installed (CI installs it); pyflakes stays off.
func lint(t *testing.T, path string, content []byte) []*actionlint.Error {
	t.Helper()
	opts := &actionlint.LinterOptions{
		OnRulesCreated: func(rules []actionlint.Rule) []actionlint.Rule {
			return append(rules, newPinRule(content), newRunScriptRule())
		},
	}
	if shellcheck, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = shellcheck
	}
	l, err := actionlint.NewLinter(io.Discard, opts)
	if err != nil {
		t.Fatalf("actionlint: %v", err)
	}
	errs, err := l.Lint(path, content, nil)
	if err != nil {
		t.Fatalf("actionlint %s: %v", path, err)
	}
	return errs
}

var (
	commitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)
	// releaseComment is the "# v1.2.3" after a pinned SHA, naming the release it is.
	releaseComment = regexp.MustCompile(`#\s*(v(\d+)\.\d+\.\d+)\s*$`)
)

// pinRule: every action and reusable workflow from another repository is pinned to a full commit
// SHA with a "# vX.Y.Z" comment. actionlint checks inputs only of actions referenced by tag, so
// this rule checks a pinned action's with: against actionlint's data for the commented major.
type pinRule struct {
	actionlint.RuleBase
	lines []string
}

func newPinRule(content []byte) *pinRule {
	return &pinRule{
		RuleBase: actionlint.NewRuleBase("pinned-action", "third-party actions are pinned to a commit SHA with a # vX.Y.Z comment"),
		lines:    strings.Split(string(content), "\n"),
	}
}

func (r *pinRule) VisitStep(s *actionlint.Step) error {
	if a, ok := s.Exec.(*actionlint.ExecAction); ok && a.Uses != nil {
		r.check(a.Uses, a)
	}
	return nil
}

func (r *pinRule) VisitJobPre(j *actionlint.Job) error {
	if j.WorkflowCall != nil && j.WorkflowCall.Uses != nil {
		r.check(j.WorkflowCall.Uses, nil)
	}
	return nil
}

func (r *pinRule) check(uses *actionlint.String, a *actionlint.ExecAction) {
	spec := uses.Value
	switch {
	case strings.HasPrefix(spec, "./"):
		return // this repository's own: pinned by the commit under test
	case strings.HasPrefix(spec, "docker://"):
		if !strings.Contains(spec, "@sha256:") {
			r.Errorf(uses.Pos, "docker action %q is not pinned by digest: use docker://image@sha256:<digest>", spec)
		}
		return
	}
	name, ref, _ := strings.Cut(spec, "@")
	if !commitSHA.MatchString(ref) {
		r.Errorf(uses.Pos, "%q is not pinned to a full commit SHA: use %s@<40 hex digits> # vX.Y.Z", spec, name)
		return
	}
	release := releaseComment.FindStringSubmatch(r.line(uses.Pos.Line))
	if release == nil {
		r.Errorf(uses.Pos, "%q has no \"# vX.Y.Z\" comment naming the release its SHA is", spec)
		return
	}
	if a != nil {
		r.checkInputs(a, name+"@v"+release[2], release[1])
	}
}

func (r *pinRule) line(n int) string {
	if n < 1 || n > len(r.lines) {
		return ""
	}
	return r.lines[n-1]
}

// checkInputs compares with: to the inputs actionlint knows for that major version, when it knows
// the action at all.
func (r *pinRule) checkInputs(a *actionlint.ExecAction, key, release string) {
	meta, ok := actionlint.PopularActions[key]
	if !ok || meta.SkipInputs {
		r.Debug("no input data for %s", key)
		return
	}
	for id, in := range a.Inputs {
		if _, ok := meta.Inputs[id]; !ok {
			r.Errorf(in.Name.Pos, "input %q is not defined in %s (pinned %s); it has %s",
				in.Name.Value, key, release, strings.Join(sortedKeys(meta.Inputs), ", "))
		}
	}
	for id, in := range meta.Inputs {
		if _, ok := a.Inputs[id]; in.Required && !ok {
			r.Errorf(a.Uses.Pos, "input %q is required by %s (pinned %s) but not given", in.Name, key, release)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// runScriptRule: no ${{ }} inside run: scripts. An expression is spliced into the script before
// the shell sees it, so an input or event field could inject commands; values go through env:.
type runScriptRule struct {
	actionlint.RuleBase
}

func newRunScriptRule() *runScriptRule {
	return &runScriptRule{RuleBase: actionlint.NewRuleBase("run-script-expression", "run: scripts take values through env, not ${{ }}")}
}

func (r *runScriptRule) VisitStep(s *actionlint.Step) error {
	if run, ok := s.Exec.(*actionlint.ExecRun); ok && run.Run != nil && run.Run.ContainsExpression() {
		r.Errorf(run.Run.Pos, "run: script contains a ${{ }} expression: pass the value through env: and quote the variable (script injection)")
	}
	return nil
}
