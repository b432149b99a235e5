package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/environment"
	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/retention"
)

// fakeEnv is an environment whose registry, provision and teardown do what a test says. It
// embeds the interface so a call the test did not expect panics.
type fakeEnv struct {
	environment.Environment
	registryErr error
	// teardown: stall until the teardown context ends (an API that hangs), or fail.
	stallTeardown bool
	teardownErr   error

	mu    sync.Mutex
	calls []string
	kept  retention.Policy
}

func (f *fakeEnv) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeEnv) Name() string { return "fake" }

func (f *fakeEnv) Inventory() drill.Inventory { return nil }

func (f *fakeEnv) Registry(context.Context) (environment.Destination, error) {
	f.record("registry")
	return environment.Destination{}, f.registryErr
}

func (f *fakeEnv) Teardown(ctx context.Context, keep retention.Policy) (environment.Teardown, error) {
	f.record("teardown")
	f.kept = keep
	left := environment.Teardown{
		Steps: []environment.Step{{Name: "terminate instance", Error: "stalled"}},
		Left:  []string{"instance i-0fake (running) of run r1", "security group sg-0fake of run r1", "key pair deploydrill-r1 of run r1"},
		Sweep: "go run ./ci sweep --run-id r1 --region eu-west-1 --repository deploydrill",
	}
	switch {
	case f.stallTeardown:
		<-ctx.Done()
		return left, context.Cause(ctx)
	case f.teardownErr != nil:
		return left, f.teardownErr
	}
	return environment.Teardown{Steps: []environment.Step{{Name: "terminate instance"}}}, nil
}

// useFakeTarget adds the fake to the target table for one test.
func useFakeTarget(t *testing.T, env *fakeEnv) {
	saved := slices.Clone(targets)
	targets = append(targets, targetKind{name: "fake", open: func(context.Context, *drillRun) (environment.Environment, error) { return env, nil }})
	t.Cleanup(func() { targets = saved })
}

func fakeDrillArgs(t *testing.T, reportDir string, extra ...string) []string {
	return append([]string{"--target", "fake", "--version", "v1", "--app-dir", t.TempDir(), "--cache-dir", t.TempDir(),
		"--report-dir", reportDir, "--live", "1s", "--outage", "1s", "--recovery", "1s"}, extra...)
}

func readFullReport(t testing.TB, dir string) report.Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatalf("no report after the run: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// The report is written after teardown, so a teardown that fails or is aborted before the drill
// starts is in it: what failed, what may be left, and the command that removes it; stderr says
// the same.
func TestTeardownBeforeTheDrillIsReported(t *testing.T) {
	tests := []struct {
		name    string
		env     *fakeEnv
		args    []string
		wantErr string // in the teardown error
	}{
		{"a teardown that fails", &fakeEnv{registryErr: errors.New("throttled"), teardownErr: errors.New("delete security group: DependencyViolation")}, nil, "DependencyViolation"},
		{"a teardown aborted at its deadline while the API stalls", &fakeEnv{registryErr: errors.New("throttled"), stallTeardown: true}, []string{"--teardown-timeout", "50ms"}, "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useFakeTarget(t, tt.env)
			dir := filepath.Join(t.TempDir(), "report")
			var stdout, stderr bytes.Buffer
			err := dispatch(t.Context(), fakeDrillArgs(t, dir, tt.args...), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "registry: throttled") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want the registry failure and the teardown's", err)
			}
			r := readFullReport(t, dir)
			if !strings.Contains(r.TeardownError, tt.wantErr) || !strings.Contains(r.Error, "registry: throttled") {
				t.Errorf("report: error %q, teardown_error %q", r.Error, r.TeardownError)
			}
			if len(r.Teardown.Left) != 3 || !strings.HasPrefix(r.Teardown.Sweep, "go run ./ci sweep --run-id r1") {
				t.Errorf("report: left %q, sweep %q; want the instance, group and key pair and the sweep command", r.Teardown.Left, r.Teardown.Sweep)
			}
			for _, e := range r.Expectations {
				if e.Phase == "teardown" && e.Status != "failed" {
					t.Errorf("teardown expectation %s, want failed", e.Status)
				}
			}
			for _, want := range []string{"may be left: instance i-0fake", "remove it with: go run ./ci sweep --run-id r1"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
				}
			}
			md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
			if !strings.Contains(string(md), "May be left") || strings.Contains(string(md), "Deployed **V** ``") {
				t.Errorf("summary.md:\n%s", md)
			}
		})
	}
}

// Every input is checked before anything is created: a mistake is a usage error and the
// target's registry is never called.
func TestBadInputFailsBeforeAnythingIsCreated(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a probe interval under the minimum", []string{"--interval", "10ms"}, "probe interval 10ms"},
		{"a negative retention", []string{"--keep-verified", "-1"}, "--keep-verified -1"},
		{"an unknown target", []string{"--target", "mars"}, `--target "mars"`},
		{"a malformed variable", nil, "DRILL_FAILURES_TO_ROLLBACK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &fakeEnv{}
			useFakeTarget(t, env)
			if tt.want == "DRILL_FAILURES_TO_ROLLBACK" {
				t.Setenv("DRILL_FAILURES_TO_ROLLBACK", "three")
			}
			dir := filepath.Join(t.TempDir(), "report")
			err := dispatch(t.Context(), fakeDrillArgs(t, dir, tt.args...), new(bytes.Buffer), new(bytes.Buffer))
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a usage error about %q", err, tt.want)
			}
			if len(env.calls) > 0 {
				t.Errorf("the target was called: %q", env.calls)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("a report was written for a run that created nothing")
			}
		})
	}
}

// Retention runs from teardown whatever happened, with one meaning: keep V and K by tag and
// --keep-verified others (0 keeps none besides them).
func TestTeardownAppliesRetentionEvenWhenTheDrillNeverRan(t *testing.T) {
	env := &fakeEnv{registryErr: errors.New("throttled")}
	useFakeTarget(t, env)
	dir := filepath.Join(t.TempDir(), "report")
	dispatch(t.Context(), fakeDrillArgs(t, dir, "--keep-verified", "0"), new(bytes.Buffer), new(bytes.Buffer))
	if !slices.Equal(env.calls, []string{"registry", "teardown"}) {
		t.Fatalf("calls %q, want registry then teardown", env.calls)
	}
	if env.kept.KeepVerified != 0 || len(env.kept.Keep) != 0 {
		t.Errorf("retention %+v, want keep-verified 0 and nothing kept by tag (nothing was published)", env.kept)
	}
}

// Every run that got as far as creating something is recorded, failed ones too; a history it
// cannot read is reported and left as it is.
func TestEveryRunIsRecordedAndACorruptHistoryIsNeverOverwritten(t *testing.T) {
	env := &fakeEnv{registryErr: errors.New("throttled")}
	useFakeTarget(t, env)
	hist := filepath.Join(t.TempDir(), "history.jsonl")
	dir := filepath.Join(t.TempDir(), "report")
	dispatch(t.Context(), fakeDrillArgs(t, dir, "--history", hist), new(bytes.Buffer), new(bytes.Buffer))
	var out bytes.Buffer
	if err := dispatch(t.Context(), []string{"history", "--history", hist, "--json"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	var records []struct {
		Target     string `json:"target"`
		V          string `json:"v"`
		Passed     bool   `json:"passed"`
		ExitStatus int    `json:"exit_status"`
	}
	if err := json.Unmarshal(out.Bytes(), &records); err != nil {
		t.Fatalf("history --json: %v\n%s", err, out.String())
	}
	if len(records) != 1 || records[0].Target != "fake" || records[0].Passed || records[0].ExitStatus != 1 {
		t.Fatalf("records %+v, want the failed run recorded with exit status 1", records)
	}

	garbage := []byte("{\"schema\":\"deploydrill.history/v1\"\nnot json at all\n")
	os.WriteFile(hist, garbage, 0o644)
	err := dispatch(t.Context(), fakeDrillArgs(t, dir, "--history", hist), new(bytes.Buffer), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "history") || !strings.Contains(err.Error(), hist) {
		t.Errorf("err = %v, want the unreadable history named", err)
	}
	if got, _ := os.ReadFile(hist); !bytes.Equal(got, garbage) {
		t.Errorf("the corrupt history was changed:\n%s", got)
	}
	if err := dispatch(t.Context(), []string{"history", "--history", hist}, new(bytes.Buffer), new(bytes.Buffer)); err == nil || !strings.Contains(err.Error(), ":1") && !strings.Contains(err.Error(), "line 1") {
		t.Errorf("history on a corrupt file: %v, want the file and line named", err)
	}
}

func TestGateFlagsAreCheckedBeforeAnythingIsCreated(t *testing.T) {
	for _, args := range [][]string{
		{"--max-budget-use", "10"},                 // no --slo
		{"--slo", "100"},                           // not below 100
		{"--slo", "99.9", "--slo-window", "month"}, // not a window
		{"--regress", "-5"},
	} {
		env := &fakeEnv{}
		useFakeTarget(t, env)
		err := dispatch(t.Context(), fakeDrillArgs(t, filepath.Join(t.TempDir(), "r"), args...), new(bytes.Buffer), new(bytes.Buffer))
		if !errors.Is(err, errUsage) || len(env.calls) > 0 {
			t.Errorf("%v: err %v, calls %q; want a usage error before any call", args, err, env.calls)
		}
	}
}

// --history s3://bucket/prefix keeps one object per drill in S3 (here the AWS double, through
// the real SDK client); `history` reads them back.
func TestHistoryInS3(t *testing.T) {
	double := awsdouble.New(awsdouble.Options{})
	t.Cleanup(double.Close)
	double.S3.CreateBucket("drills")
	t.Setenv("AWS_ENDPOINT_URL", double.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDDOUBLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "double-secret")
	t.Setenv("AWS_REGION", double.Region())
	for range 2 {
		env := &fakeEnv{registryErr: errors.New("throttled")}
		useFakeTarget(t, env)
		dispatch(t.Context(), fakeDrillArgs(t, filepath.Join(t.TempDir(), "r"), "--history", "s3://drills/team-a"), new(bytes.Buffer), new(bytes.Buffer))
	}
	objects := double.S3.Objects("drills")
	if len(objects) != 2 || !strings.HasPrefix(objects[0].Key, "team-a/") {
		t.Fatalf("objects %+v, want two records under team-a/", objects)
	}
	var out bytes.Buffer
	if err := dispatch(t.Context(), []string{"history", "--history", "s3://drills/team-a", "--json"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	var records []map[string]any
	if err := json.Unmarshal(out.Bytes(), &records); err != nil || len(records) != 2 {
		t.Fatalf("history --json: %d records, %v\n%s", len(records), err, out.String())
	}
}
