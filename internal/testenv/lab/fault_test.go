package lab

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/internal/testenv/testimage"
)

// TestSudoAndGroundTruth: a user given sudo gets root through sudo -n, as the AMI's default
// user does, and what it does as root happens in the instance's own namespace (a firewall rule,
// a frozen container), where the ground-truth accessors see it and the host does not.
func TestSudoAndGroundTruth(t *testing.T) {
	Require(t)
	ctx := t.Context()
	host := snapshotHost(t)
	client, authorized := newClientKey(t)
	inst, err := Start(ctx, Config{Name: "sudo", Index: 7, AuthorizedKeys: authorized, Sudo: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			closeLab(t, inst)
		}
	})
	r := dialLab(t, inst, client)
	sh := func(cmd remote.Command) string {
		t.Helper()
		out, err := r.Run(ctx, cmd, remote.WithTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if who := sh(remote.NewCommand("id", "-u")); who == "0" {
		t.Fatal("the session runs as root: sudo proves nothing")
	}
	if who := sh(remote.Sudo(remote.NewCommand("id", "-u"))); who != "0" {
		t.Errorf("sudo -n id -u = %q, want 0", who)
	}

	img, err := testimage.Build(ctx, "sudo")
	if err != nil {
		t.Fatal(err)
	}
	if err := dockerLoad(ctx, inst, img); err != nil {
		t.Fatal(err)
	}
	if _, err := hostDocker(ctx, inst, "run", "--detach", "--name", "app", "--publish", "80:5000", "deploydrill-test:stale"); err != nil {
		t.Fatal(err)
	}
	url := "http://" + inst.Addr() + "/health"
	waitHealthy(t, url)

	t.Run("a rule added through sudo is the instance's and drops the traffic", func(t *testing.T) {
		rule := remote.PartitionRule(80, "lab-test")
		sh(remote.Sudo(remote.InsertRule(rule)))
		s, err := inst.State(ctx, remote.FaultMarker)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Rules) != 1 || !strings.Contains(s.Rules[0], rule.Comment) || len(s.Clean()) != 1 {
			t.Errorf("state %+v, want the one marked rule (clean says %q)", s.Rules, s.Clean())
		}
		if hostRules, _ := run(ctx, "iptables", "-t", "raw", "-S"); strings.Contains(hostRules, rule.Comment) {
			t.Error("the rule landed in the host's namespace")
		}
		c, err := net.DialTimeout("tcp", inst.Addr()+":80", 500*time.Millisecond)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial through the partition: %v, want a timeout", err)
		}
		sh(remote.Sudo(remote.DeleteRule(rule)))
		if rules, _ := inst.Rules(ctx, "raw"); slices.ContainsFunc(rules, func(r string) bool { return strings.Contains(r, rule.Comment) }) {
			t.Errorf("rule left after delete: %q", rules)
		}
		waitHealthy(t, url)
	})

	t.Run("a paused container is frozen in its cgroup", func(t *testing.T) {
		sh(remote.Pause("app"))
		c, err := inst.Container(ctx, "app")
		if err != nil || !c.Paused || !c.Frozen || c.Pid == 0 {
			t.Fatalf("after docker pause: %+v, %v; want paused and frozen", c, err)
		}
		if s, _ := inst.State(ctx, remote.FaultMarker); len(s.Clean()) == 0 {
			t.Error("State.Clean does not report the frozen container")
		}
		sh(remote.Unpause("app"))
		if c, err := inst.Container(ctx, "app"); err != nil || c.Paused || c.Frozen || !c.Running {
			t.Fatalf("after docker unpause: %+v, %v", c, err)
		}
		waitHealthy(t, url)
	})

	if c, err := inst.Container(ctx, "absent"); err != nil || c.Exists {
		t.Errorf("a container that does not exist: %+v, %v", c, err)
	}
	r.Close()
	closeLab(t, inst)
	closed = true
	assertNothingLeft(t, inst.names, host)
}
