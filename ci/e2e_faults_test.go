package main

import (
	"path/filepath"
	"testing"

	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

// bad-deploy on the local target: the pipeline builds a broken build of the same source (its
// /health answers 503), the drill ships it over V, the watchdog catches it and rolls back to V.
func TestLocalBadDeployIsCaughtAndRolledBack(t *testing.T) {
	testenv.Dagger(t)
	dir := filepath.Join(t.TempDir(), "report")
	v := randomVersion("bd")
	runDrillInProcess(t, drillArgs(t, t.TempDir(), dir, v, "--fault", "bad-deploy", "--auto-rollback", "--outage", "20s"))
	r := readFullReport(t, dir)
	if !r.Passed || r.Config.Fault.Kind != "bad-deploy" || r.Config.Fault.Broken == nil || r.Config.Fault.Broken.Tag != v+"-broken" {
		t.Fatalf("passed %v, fault %+v", r.Passed, r.Config.Fault)
	}
	if r.K == nil || r.K.Version != v {
		t.Errorf("K %+v, want V %s itself, the known-good version", r.K, v)
	}
	var outage, recovery int
	for _, s := range r.Samples {
		switch s.Phase {
		case "outage":
			outage++
			if s.Outcome != "http_error" || s.Status != 503 {
				t.Errorf("outage sample %s %d, want the broken build's 503", s.Outcome, s.Status)
			}
		case "recovery":
			recovery++
			if s.Outcome != "ok" || s.Version != v {
				t.Errorf("recovery sample %s %q, want V healthy", s.Outcome, s.Version)
			}
		}
	}
	if outage == 0 || recovery == 0 {
		t.Errorf("%d outage and %d recovery samples", outage, recovery)
	}
	if r.Rollback.Trigger == "" || r.Rollback.Trigger[:8] != "watchdog" {
		t.Errorf("rollback trigger %q, want the watchdog, well before the 20 s window", r.Rollback.Trigger)
	}
	t.Logf("bad version live → V healthy: detect %v ms, recover %v ms", *r.Figures.TimeToDetectMS, *r.Figures.TimeToRecoverMS)
}

// --load sends users' traffic through every window: answered while V and K serve, failed in
// the outage, and the report says how many and how.
func TestLocalDrillWithUsersLoad(t *testing.T) {
	testenv.Dagger(t)
	dir := filepath.Join(t.TempDir(), "report")
	runDrillInProcess(t, drillArgs(t, t.TempDir(), dir, randomVersion("ld"), "--load", "20"))
	r := readFullReport(t, dir)
	u := r.Figures.Users
	if u == nil || u.Requests < 40 {
		t.Fatalf("users %+v, want at least 40 requests over 6 s of windows at 20/s", u)
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

// Every injected fault kind on the local target: the drill passes, the outage shows the kind's
// own symptoms, and afterwards no process of V or K is left (with the containers go their
// frozen cgroups, firewall rules and delaying proxies), also after SIGINT during a fault.
func TestLocalDrillFaults(t *testing.T) {
	testenv.Dagger(t)
	cache := t.TempDir()
	for _, kind := range []string{"kill", "hang", "partition", "slow", "crashloop"} {
		t.Run(kind, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "report")
			v := randomVersion("lf")
			runDrillInProcess(t, drillArgs(t, cache, dir, v, "--fault", kind, "--auto-rollback", "--failure-window", "5", "--outage", "20s"))
			r := readFullReport(t, dir)
			checkOutageSymptoms(t, r, kind)
			for _, version := range []string{v, r.K.Version} {
				if pids := testenv.AppProcesses(version); len(pids) > 0 {
					t.Errorf("%s still runs after the drill: %v", version, pids)
				}
			}
		})
	}
}
