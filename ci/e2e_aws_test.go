package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/internal/retention"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// The AWS target end to end in the lab (internal/testenv/awslab): the AWS double boots netns
// instances from user-data, the real Dagger engine pushes to a registry standing in for ECR,
// the instances pull from it, and this package's own `go run ./ci --target aws` path drives it.

// awsLabIndex keeps this package's lab instances apart from those of awslab's own tests, which
// `go test ./...` runs at the same time.
const awsLabIndex = 40

func startAWSLab(t testing.TB, o awslab.Options) *awslab.Lab {
	t.Helper()
	testenv.Dagger(t) // fails in CI, skips elsewhere, when there is no engine
	o.FirstIndex = awsLabIndex
	return awslab.Start(t, o)
}

// awsDrill is one run of the CLI against the lab, with short windows and its own run id.
type awsDrill struct {
	lab                       *awslab.Lab
	version, runID, reportDir string
	args                      []string
	abortsEarly               bool // it fails at provisioning or at the first pull: a host booted, nothing run
}

func newAWSDrill(t *testing.T, l *awslab.Lab, prefix string, extra ...string) *awsDrill {
	t.Helper()
	version := testVersion(t, prefix)
	d := &awsDrill{lab: l, version: version, runID: "e2e-" + version, reportDir: filepath.Join(t.TempDir(), "report")}
	d.args = append(l.Args(),
		"--base-image", testenv.BaseImage(t), "--cache-dir", t.TempDir(), "--report-dir", d.reportDir,
		"--version", version, "--run-id", d.runID,
		"--live", "2s", "--outage", "2s", "--recovery", "2s", "--interval", probeInterval)
	d.args = append(d.args, extra...) // a flag given twice: the last one wins
	return d
}

// run runs the drill as its own process with the lab's environment, as `go run ./ci` would,
// so drills in labs of their own can run side by side.
func (d *awsDrill) run(t *testing.T) cliRun {
	t.Helper()
	defer drillSlot(t, d.weight())()
	r := runCLI(t, d.lab.Env(), d.args...)
	t.Logf("drill %s (run %s) took %s: exit %d", d.version, d.runID, r.took.Round(time.Millisecond), r.exit)
	if testing.Verbose() {
		t.Logf("stderr of drill %s:\n%s", d.version, r.stderr)
	}
	return r
}

// weight is the machine's test slots the drill takes (testenv.Slot): one, none for a drill
// that fails before it deploys (abortsEarly). A fleet's three hosts mostly wait for the load
// balancer's checks; two slots made it wait for two free at once.
func (d *awsDrill) weight() int {
	if d.abortsEarly {
		return 0
	}
	return 1
}

// start runs the drill as its own process and returns once its stderr showed marker.
func (d *awsDrill) start(t *testing.T, marker string) *drillProcess {
	t.Helper()
	return startCLI(t, d.weight(), d.lab.Env(), marker, d.args...)
}

func (d *awsDrill) report(t *testing.T) report.Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(d.reportDir, "report.json"))
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	return r
}

// TestAWSDrillEndToEnd runs two drills in one lab: the first re-creates V (nothing verified
// yet) and marks it verified in ECR; the second rolls back to it, pre-pulled during the live
// window. After each, the double and the lab hold nothing of the run but the repository's
// inventory.
func TestAWSDrillEndToEnd(t *testing.T) {
	t.Parallel()
	l := startAWSLab(t, awslab.Options{})

	first := newAWSDrill(t, l, "a1")
	run := first.run(t)
	if err := run.err(); err != nil {
		t.Fatalf("first drill: %v\n%s", err, run.stderr)
	}
	checkAWSDrill(t, first, first.report(t), first.version, "recreate")
	checkNoSecrets(t, l, first, run.stdout+run.stderr)
	l.AssertNothingLeft(t)
	if tags := repositoryTags(t, l); !slices.Contains(tags, retention.VerifiedTag(first.version)) {
		t.Fatalf("ECR tags after the first drill: %v, want %s%s", tags, retention.VerifiedPrefix, first.version)
	}

	second := newAWSDrill(t, l, "a2", "--auto-rollback")
	run = second.run(t)
	if err := run.err(); err != nil {
		t.Fatalf("second drill: %v\n%s", err, run.stderr)
	}
	r := second.report(t)
	checkAWSDrill(t, second, r, first.version, "verified")
	checkNoSecrets(t, l, second, run.stdout+run.stderr)
	if !strings.Contains(run.stderr, "image already on the host: no pull tag="+first.version) {
		t.Errorf("the rollback pulled K: it was not pre-pulled during the live window\n%s", run.stderr)
	}
	if f := r.Figures.TimeToRecoverMS; f != nil {
		t.Logf("rollback start to healthy with K pre-pulled: %.0f ms (goal 3000)", *f)
	}
	l.AssertNothingLeft(t)
	tags := repositoryTags(t, l)
	for _, want := range []string{first.version, second.version, retention.VerifiedTag(first.version), retention.VerifiedTag(second.version)} {
		if !slices.Contains(tags, want) {
			t.Errorf("ECR tags %v lack %s", tags, want)
		}
	}
	for _, in := range l.Instances() {
		if in.User != l.RemoteUser() {
			t.Errorf("instance %s made user %q, want --remote-user %q", in.ID, in.User, l.RemoteUser())
		}
	}
}

// checkAWSDrill checks the report against what the drill was asked to do: V healthy through the
// live window, nothing answering through the outage, K healthy through the recovery window.
func checkAWSDrill(t *testing.T, d *awsDrill, r report.Report, k, kind string) {
	t.Helper()
	if !r.Passed || r.Target != "aws" || r.V.Version != d.version || r.K == nil || r.K.Version != k || r.Rollback.Kind != kind {
		t.Errorf("passed=%v target=%s V=%s K=%+v rollback=%q error=%q, want an aws drill of %s rolled back (%s) to %s",
			r.Passed, r.Target, r.V.Version, r.K, r.Rollback.Kind, r.Error, d.version, kind, k)
	}
	if !strings.HasPrefix(r.V.Ref, d.lab.RegistryHost()+"/") || !strings.Contains(r.V.Ref, "@sha256:") {
		t.Errorf("V ref %s: want a digest in the lab's registry %s", r.V.Ref, d.lab.RegistryHost())
	}
	if len(r.Warnings) > 0 {
		t.Errorf("warnings: %q", r.Warnings)
	}
	counts := map[string]int{}
	for _, s := range r.Samples {
		counts[s.Phase]++
		switch {
		case s.Phase == "live" && (s.Outcome != "ok" || s.Version != d.version):
			t.Errorf("live sample %s %q, want ok from %s", s.Outcome, s.Version, d.version)
		case s.Phase == "outage" && (s.Outcome == "ok" || s.Outcome == "wrong_version"):
			t.Errorf("outage sample answered: %s %q", s.Outcome, s.Version)
		case s.Phase == "recovery" && (s.Outcome != "ok" || s.Version != k):
			t.Errorf("recovery sample %s %q, want ok from %s", s.Outcome, s.Version, k)
		}
	}
	for _, phase := range []string{"live", "outage", "recovery"} {
		if counts[phase] == 0 {
			t.Errorf("no samples in the %s window", phase)
		}
	}
	checkDetected(t, r)
	if r.Figures.TimeToRecoverMS == nil {
		t.Error("no time to recover")
	}
}

// checkNoSecrets: the ECR password and the SSH keys never reach output or the report.
func checkNoSecrets(t *testing.T, l *awslab.Lab, d *awsDrill, output string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(d.reportDir, "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		output += string(data)
	}
	for _, secret := range []string{l.RegistryPassword(), "PRIVATE KEY"} {
		if strings.Contains(output, secret) {
			t.Errorf("a secret (%.12s...) appears in the output or report", secret)
		}
	}
}

// repositoryTags are the tags of the drill's default ECR repository in the double.
func repositoryTags(t *testing.T, l *awslab.Lab) []string {
	t.Helper()
	repo, ok := l.Double.Repository(ecr.DefaultRepository)
	if !ok {
		t.Fatalf("no repository %s in the double", ecr.DefaultRepository)
	}
	var tags []string
	for _, img := range repo.Images {
		tags = append(tags, img.Tags...)
	}
	return tags
}
