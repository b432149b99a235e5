package workflows

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// drillJob is drill.yml parsed, with its one job.
type drillJob struct {
	wf     *actionlint.Workflow
	job    *actionlint.Job
	raw    string
	engine string // dagger.json's engineVersion
}

func parseDrill(t *testing.T, raw []byte, engine string) drillJob {
	t.Helper()
	wf, errs := actionlint.Parse(raw)
	for _, err := range errs {
		t.Errorf("drill.yml: %v", err)
	}
	if wf == nil || len(wf.Jobs) != 1 {
		t.Fatalf("drill.yml: want exactly one job")
	}
	d := drillJob{wf: wf, raw: string(raw), engine: engine}
	for _, j := range wf.Jobs {
		d.job = j
	}
	return d
}

// env is a variable set for every step, job-level first as GitHub resolves it.
func (d drillJob) env(name string) (string, bool) {
	for _, e := range []*actionlint.Env{d.job.Env, d.wf.Env} {
		if e == nil {
			continue
		}
		if v, ok := e.Vars[strings.ToLower(name)]; ok && v.Value != nil {
			return v.Value.Value, true
		}
	}
	return "", false
}

// using returns the steps that run action (owner/repo) at any ref.
func (d drillJob) using(action string) []*actionlint.Step {
	var out []*actionlint.Step
	for _, s := range d.job.Steps {
		if a, ok := s.Exec.(*actionlint.ExecAction); ok && strings.HasPrefix(a.Uses.Value, action+"@") {
			out = append(out, s)
		}
	}
	return out
}

func input(s *actionlint.Step, name string) string {
	if in, ok := s.Exec.(*actionlint.ExecAction).Inputs[name]; ok && in.Value != nil {
		return in.Value.Value
	}
	return ""
}

func runsAlways(s *actionlint.Step) bool {
	return s.If != nil && strings.Contains(s.If.Value, "always()")
}

// drillInputs are the manual run's inputs and the variables the drill reads them from.
var drillInputs = []struct {
	input, env string
	boolean    bool
}{
	{"live", "DRILL_LIVE_WINDOW", false},
	{"outage", "DRILL_OUTAGE_WINDOW", false},
	{"recovery", "DRILL_RECOVERY_WINDOW", false},
	{"auto-rollback", "DRILL_AUTO_ROLLBACK", true},
	{"rollback-to", "DRILL_ROLLBACK_TO", false},
	{"instance-type", "DRILL_INSTANCE_TYPE", false},
	{"region", "AWS_REGION", false},
}

// longLivedKeys are what a workflow holding stored AWS keys would mention.
var longLivedKeys = []string{"aws-access-key-id", "aws-secret-access-key", "aws-session-token",
	"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}

var drillRun = regexp.MustCompile(`\bdagger\b.*\brun go run \./ci\b`)

const sweepCommand = `go run ./ci sweep --run-id "$DRILL_RUN_ID"`

// drillRule is one thing drill.yml must do; check returns "" when it holds, else the problem.
type drillRule struct {
	name  string
	check func(d drillJob) string
}

var drillPolicy = []drillRule{
	{"runs on pushes to main and on demand", func(d drillJob) string {
		var push, dispatch bool
		for _, e := range d.wf.On {
			switch e := e.(type) {
			case *actionlint.WebhookEvent:
				push = push || e.Hook.Value == "push" && e.Branches != nil &&
					slices.ContainsFunc(e.Branches.Values, func(b *actionlint.String) bool { return b.Value == "main" })
			case *actionlint.WorkflowDispatchEvent:
				dispatch = true
			}
		}
		if !push || !dispatch {
			return fmt.Sprintf("want push to main (%t) and workflow_dispatch (%t)", push, dispatch)
		}
		return ""
	}},
	{"passes every input to the drill through the environment", func(d drillJob) string {
		var dispatch *actionlint.WorkflowDispatchEvent
		for _, e := range d.wf.On {
			if e, ok := e.(*actionlint.WorkflowDispatchEvent); ok {
				dispatch = e
			}
		}
		if dispatch == nil {
			return "no workflow_dispatch"
		}
		var problems []string
		for _, want := range drillInputs {
			in, ok := dispatch.Inputs[want.input]
			switch v, set := d.env(want.env); {
			case !ok:
				problems = append(problems, "no input "+want.input)
			case want.boolean != (in.Type == actionlint.WorkflowDispatchEventInputTypeBoolean):
				problems = append(problems, fmt.Sprintf("input %s: boolean %t, want %t", want.input, !want.boolean, want.boolean))
			case !set || !strings.Contains(v, "inputs."+want.input):
				problems = append(problems, fmt.Sprintf("input %s never reaches %s (it is %q)", want.input, want.env, v))
			}
		}
		return strings.Join(problems, "; ")
	}},
	{"drills against AWS", func(d drillJob) string {
		if v, _ := d.env("DRILL_TARGET"); v != "aws" {
			return fmt.Sprintf("DRILL_TARGET is %q, want aws", v)
		}
		return ""
	}},
	{"asks GitHub for an OIDC token and nothing more", func(d drillJob) string {
		p := d.job.Permissions
		if p == nil {
			p = d.wf.Permissions
		}
		if p == nil || p.All != nil {
			return "want explicit scopes id-token: write and contents: read, not the default token's"
		}
		var problems []string
		for name, want := range map[string]string{"id-token": "write", "contents": "read"} {
			if s, ok := p.Scopes[name]; !ok || s.Value.Value != want {
				problems = append(problems, fmt.Sprintf("want %s: %s", name, want))
			}
		}
		for name, s := range p.Scopes {
			if name != "id-token" && s.Value.Value == "write" {
				problems = append(problems, name+": write is more than the drill needs")
			}
		}
		slices.Sort(problems)
		return strings.Join(problems, "; ")
	}},
	{"never overlaps or cancels another drill", func(d drillJob) string {
		c := d.job.Concurrency
		if c == nil {
			c = d.wf.Concurrency
		}
		if c == nil || c.Group == nil || strings.TrimSpace(c.Group.Value) == "" {
			return "no concurrency group"
		}
		if b := c.CancelInProgress; b != nil && (b.Expression != nil || b.Value) {
			return "cancel-in-progress must be false: a cancelled drill cuts its own teardown short"
		}
		return ""
	}},
	{"names the run after the GitHub run and its attempt", func(d drillJob) string {
		v, _ := d.env("DRILL_RUN_ID")
		if !strings.Contains(v, "github.run_id") || !strings.Contains(v, "github.run_attempt") {
			return fmt.Sprintf("DRILL_RUN_ID is %q, want it made of github.run_id and github.run_attempt", v)
		}
		return ""
	}},
	{"assumes a role and stores no AWS keys", func(d drillJob) string {
		for _, key := range longLivedKeys {
			if strings.Contains(strings.ToLower(d.raw), key) {
				return "mentions " + key + ": AWS access is OIDC only"
			}
		}
		steps := d.using("aws-actions/configure-aws-credentials")
		if len(steps) != 1 || input(steps[0], "role-to-assume") == "" {
			return "want one configure-aws-credentials step with role-to-assume"
		}
		return ""
	}},
	{"installs the dagger CLI at dagger.json's engine version", func(d drillJob) string {
		steps := d.using("dagger/dagger-for-github")
		if len(steps) != 1 {
			return fmt.Sprintf("want one dagger/dagger-for-github step, have %d", len(steps))
		}
		if v := input(steps[0], "version"); v != d.engine {
			return fmt.Sprintf("dagger CLI %q, dagger.json's engine %s", v, d.engine)
		}
		return ""
	}},
	{"runs the drill under dagger run", func(d drillJob) string {
		for _, s := range d.job.Steps {
			if r, ok := s.Exec.(*actionlint.ExecRun); ok && r.Run != nil && drillRun.MatchString(r.Run.Value) {
				return ""
			}
		}
		return "no step runs `dagger run go run ./ci`"
	}},
	{"uploads the report even when the drill fails", func(d drillJob) string {
		for _, s := range d.using("actions/upload-artifact") {
			if runsAlways(s) && strings.Contains(input(s, "path"), "DRILL_REPORT_DIR") {
				return ""
			}
		}
		return "no upload-artifact step with if: always() and path: the report directory"
	}},
	{"ends with a sweep of this run that always runs", func(d drillJob) string {
		last := d.job.Steps[len(d.job.Steps)-1]
		r, ok := last.Exec.(*actionlint.ExecRun)
		if !ok || r.Run == nil || !strings.Contains(r.Run.Value, sweepCommand) || !runsAlways(last) {
			return "the last step must run `" + sweepCommand + "` with if: always()"
		}
		return ""
	}},
	{"has a time limit", func(d drillJob) string {
		if d.job.TimeoutMinutes == nil {
			return "no timeout-minutes: a hung drill would hold the concurrency group for 6 hours"
		}
		return ""
	}},
}

func TestDrillWorkflowPolicy(t *testing.T) {
	w := readWorkflow(t, "drill.yml")
	d := parseDrill(t, w.content, engineVersion(t))
	for _, p := range drillPolicy {
		t.Run(p.name, func(t *testing.T) {
			if problem := p.check(d); problem != "" {
				t.Error(problem)
			}
		})
	}
}

// TestDrillPolicyCatchesViolations breaks drill.yml one way at a time; the named policy must object.
func TestDrillPolicyCatchesViolations(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, policy string
	}{
		{"a drill without id-token: write cannot assume the role",
			"  id-token: write # the OIDC token the AWS role trusts\n", "", "asks GitHub for an OIDC token and nothing more"},
		{"a token that may write to the repository is too much",
			"  contents: read\n", "  contents: write\n", "asks GitHub for an OIDC token and nothing more"},
		{"a newer drill may not cancel a running one",
			"cancel-in-progress: false", "cancel-in-progress: true", "never overlaps or cancels another drill"},
		{"a stored access key is refused",
			"          role-to-assume: ${{ vars.DRILL_ROLE_ARN }}\n", "          aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}\n", "assumes a role and stores no AWS keys"},
		{"a dagger CLI other than dagger.json's engine is refused",
			"version: v0.18.10", "version: v0.18.9", "installs the dagger CLI at dagger.json's engine version"},
		{"an input that never reaches the drill is refused",
			"DRILL_LIVE_WINDOW: ${{ inputs.live }}", "DRILL_LIVE_WINDOW: 1m", "passes every input to the drill through the environment"},
		{"a boolean input typed as a string is refused",
			"        type: boolean\n", "        type: string\n", "passes every input to the drill through the environment"},
		{"the local target is not this workflow's",
			"DRILL_TARGET: aws", "DRILL_TARGET: local", "drills against AWS"},
		{"a run id shared by reruns is refused",
			"gha-${{ github.run_id }}-${{ github.run_attempt }}", "gha-${{ github.run_id }}", "names the run after the GitHub run and its attempt"},
		{"a report uploaded only on success is refused",
			"        if: always()\n        uses: actions/upload-artifact", "        uses: actions/upload-artifact", "uploads the report even when the drill fails"},
		{"a sweep that runs only on success is refused",
			"if: always() && steps.aws.outcome == 'success'", "if: steps.aws.outcome == 'success'", "ends with a sweep of this run that always runs"},
		{"a drill without a time limit is refused",
			"    timeout-minutes: 55\n", "", "has a time limit"},
		{"a drill without dagger run is refused",
			"run: dagger --progress=plain run go run ./ci drill", "run: go run ./ci drill", "runs the drill under dagger run"},
		{"a workflow that only runs on demand is refused",
			"  push:\n    branches: [main]\n", "", "runs on pushes to main and on demand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := readWorkflow(t, "drill.yml")
			d := parseDrill(t, mutate(t, w, tc.old, tc.new), engineVersion(t))
			i := slices.IndexFunc(drillPolicy, func(p drillRule) bool { return p.name == tc.policy })
			if i < 0 {
				t.Fatalf("no policy %q", tc.policy)
			}
			if problem := drillPolicy[i].check(d); problem == "" {
				t.Errorf("policy %q did not object", tc.policy)
			} else {
				t.Logf("objection: %s", problem)
			}
		})
	}
}
