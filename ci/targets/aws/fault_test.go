package aws_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/retention"
)

// These run against the double's sshd playing the host (env_test.go): they pin what the target
// decides; TestFaultsInTheLab checks what the commands really do.

func TestInjectRefusesWhatItDoesNotDo(t *testing.T) {
	tests := []struct {
		name  string
		fault drill.Fault
		want  string
	}{
		{"a graceful stop is the drill's own", drill.Fault{Kind: drill.FaultStop}, "does not inject it"},
		{"a bad deploy is the drill's own", drill.Fault{Kind: drill.FaultBadDeploy}, "does not inject it"},
		{"an unknown kind", drill.Fault{Kind: "flood"}, "does not inject it"},
		{"slow without a delay", drill.Fault{Kind: drill.FaultSlow}, "delay must be positive"},
		{"a negative uptime", drill.Fault{Kind: drill.FaultCrashloop, Uptime: -time.Second}, "must not be negative"},
	}
	e := newEnv(t)
	tg := e.target(t)
	e.up(t, tg)
	before := len(e.docker.sent(""))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tg.Inject(t.Context(), tt.fault); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Inject = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if sent := e.docker.sent("")[before:]; len(sent) != 0 {
		t.Errorf("refused faults sent commands: %q", sent)
	}
	td, err := tg.Teardown(t.Context(), retention.Policy{})
	if err != nil || slices.Contains(stepNames(td), "clear fault") {
		t.Errorf("teardown after refused faults: %v, steps %v; want no clear fault step", err, stepNames(td))
	}
}

func TestInjectBeforeProvisionSaysTheHostIsNotUp(t *testing.T) {
	e := newEnv(t)
	if err := e.target(t).Inject(t.Context(), drill.Fault{Kind: drill.FaultHang}); err == nil || !strings.Contains(err.Error(), "the host is not up") {
		t.Fatalf("Inject = %v", err)
	}
}

func TestClearWithNothingInjectedSendsNothing(t *testing.T) {
	e := newEnv(t)
	tg := e.target(t)
	e.up(t, tg)
	before := len(e.docker.sent(""))
	if err := tg.Clear(t.Context()); err != nil {
		t.Fatal(err)
	}
	if sent := e.docker.sent("")[before:]; len(sent) != 0 {
		t.Errorf("Clear sent %q", sent)
	}
}

func TestAPartitionIsOneRuleAndClearDeletesIt(t *testing.T) {
	e := newEnv(t)
	tg := e.target(t)
	e.up(t, tg)
	ctx := t.Context()
	for range 2 { // injecting again clears first: still one rule
		if err := tg.Inject(ctx, drill.Fault{Kind: drill.FaultPartition}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := e.docker.rulesNow(), []string{"deploydrill-fault partition run r1"}; !slices.Equal(got, want) {
		t.Errorf("rules on the host %q, want %q", got, want)
	}
	for range 2 { // idempotent
		if err := tg.Clear(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.docker.rulesNow()) != 0 {
		t.Errorf("rules left %q", e.docker.rulesNow())
	}
	if n := len(e.docker.sent("iptables -w 5 -t raw -D PREROUTING")); n != 2 {
		t.Errorf("%d deletes, want 2 (one per injection)", n)
	}
}

func TestTeardownClearsAFaultTheDrillLeftBeforeTerminating(t *testing.T) {
	e := newEnv(t)
	tg := e.target(t)
	e.up(t, tg)
	if err := tg.Inject(t.Context(), drill.Fault{Kind: drill.FaultPartition}); err != nil {
		t.Fatal(err)
	}
	td, err := tg.Teardown(t.Context(), retention.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if names := stepNames(td); len(names) < 2 || names[0] != "clear fault" || names[1] != "find" {
		t.Errorf("steps %v, want clear fault first, then the deletion steps", names)
	}
	if len(e.docker.rulesNow()) != 0 {
		t.Errorf("rules left on the host %q", e.docker.rulesNow())
	}
	if left := e.d.Leftovers(runtag.KeyRunID, "r1"); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestTeardownReportsAFailedClearAndStillTerminates(t *testing.T) {
	e := newEnv(t)
	tg := e.target(t)
	e.up(t, tg)
	if err := tg.Inject(t.Context(), drill.Fault{Kind: drill.FaultHang}); err != nil {
		t.Fatal(err)
	}
	e.docker.fail("docker container inspect")
	td, err := tg.Teardown(t.Context(), retention.Policy{})
	if err == nil || !strings.Contains(err.Error(), "clear fault: clear hang") {
		t.Errorf("teardown = %v, want the failed clear named", err)
	}
	if len(td.Steps) == 0 || td.Steps[0].Name != "clear fault" || !strings.Contains(td.Steps[0].Error, "injected failure") {
		t.Errorf("steps %+v, want clear fault first with its error", td.Steps)
	}
	for _, s := range td.Steps[1:] {
		if s.Error != "" {
			t.Errorf("step %s: %s", s.Name, s.Error)
		}
	}
	if len(td.Left) != 0 {
		t.Errorf("left %v: the host is terminated whatever the clear did", td.Left)
	}
	if left := e.d.Leftovers(runtag.KeyRunID, "r1"); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
