package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

// Every fault kind on the local target, side by side, each drill in a cache of its own: the
// drill passes, the outage shows the kind's own symptoms, the outage was detected by the first
// probe after the fault, and afterwards no process of V or K is left (with the containers go
// their frozen cgroups, firewall rules and delaying proxies). The kill drill also carries the
// users' load; the bad deploy is caught by the watchdog and rolled back to V itself.
func TestLocalDrillFaults(t *testing.T) {
	t.Parallel()
	testenv.Dagger(t)
	for _, kind := range []string{"kill", "hang", "partition", "slow", "crashloop", "bad-deploy"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "report")
			v := testVersion(t, "lf")
			args := drillArgs(t, t.TempDir(), dir, v, "--fault", kind, "--auto-rollback", "--failure-window", "5", "--outage", "20s")
			if kind == "kill" {
				args = append(args, "--load", "20")
			}
			runDrillInProcess(t, args)
			r := readFullReport(t, dir)
			checkOutageSymptoms(t, r, kind)
			checkDetected(t, r)
			if r.Rollback.Trigger == "" || !strings.HasPrefix(r.Rollback.Trigger, "watchdog") {
				t.Errorf("rollback trigger %q, want the watchdog, well before the 20 s window", r.Rollback.Trigger)
			}
			for _, version := range []string{v, r.K.Version} {
				if pids := testenv.AppProcesses(version); len(pids) > 0 {
					t.Errorf("%s still runs after the drill: %v", version, pids)
				}
			}
			switch kind {
			case "kill":
				checkUsersLoad(t, r)
			case "bad-deploy":
				checkBadDeploy(t, r, v)
			}
		})
	}
}

// checkBadDeploy: the pipeline built a broken build of the same source (its /health answers
// 503), the drill shipped it over V, and rolled back to V, the known-good version.
func checkBadDeploy(t *testing.T, r report.Report, v string) {
	t.Helper()
	if r.Config.Fault.Broken == nil || r.Config.Fault.Broken.Tag != v+"-broken" {
		t.Fatalf("fault %+v, want the broken build %s-broken", r.Config.Fault, v)
	}
	if r.K == nil || r.K.Version != v {
		t.Errorf("K %+v, want V %s itself, the known-good version", r.K, v)
	}
	for _, s := range r.Samples {
		if s.Phase == "outage" && (s.Outcome != "http_error" || s.Status != 503) {
			t.Errorf("outage sample %s %d, want the broken build's 503", s.Outcome, s.Status)
		}
		if s.Phase == "recovery" && (s.Outcome != "ok" || s.Version != v) {
			t.Errorf("recovery sample %s %q, want V healthy", s.Outcome, s.Version)
		}
	}
}

// checkUsersLoad: --load sends users' traffic through every window, answered while V and K
// serve and failed in the outage, and the report says how many and how.
func checkUsersLoad(t *testing.T, r report.Report) {
	t.Helper()
	u := r.Figures.Users
	if u == nil || u.Requests < 40 {
		t.Fatalf("users %+v, want at least 40 requests over the windows at 20/s", u)
	}
	phases := map[string]report.Availability{}
	for _, p := range u.ByPhase {
		phases[p.Phase] = p
	}
	if live := phases["live"]; live.Probes == 0 || live.Healthy != live.Probes {
		t.Errorf("live: %+v, want every user request answered", live)
	}
	if outage := phases["outage"]; outage.Probes == 0 || outage.Healthy != 0 {
		t.Errorf("outage: %+v, want every user request failed", outage)
	}
	if u.ErrorRate <= 0 || u.ErrorRate >= 1 || u.LatencyMS.Count == 0 {
		t.Errorf("error rate %v, latency %+v", u.ErrorRate, u.LatencyMS)
	}
	t.Logf("users: %d requests, %d failed (%.1f%%), p50 %.1f ms p99 %.1f ms", u.Requests, u.Failed, 100*u.ErrorRate, u.LatencyMS.P50, u.LatencyMS.P99)
}
