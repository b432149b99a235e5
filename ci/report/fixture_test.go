package report_test

import (
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }
func at(n int) time.Time     { return t0.Add(ms(n)) }

var (
	imgV = drill.Image{Ref: "flask-app@sha256:aaaa", Tag: "a1b2c3d", Version: "a1b2c3d", Digest: "sha256:aaaa"}
	imgK = drill.Image{Ref: "flask-app@sha256:bbbb", Tag: "9f8e7d6", Version: "9f8e7d6", Digest: "sha256:bbbb"}
)

// probes appends one sample a second from second `from` to `to` inclusive.
func probes(out []drill.Sample, p drill.Phase, from, to int, o probe.Outcome, version, want string) []drill.Sample {
	for i := from; i <= to; i++ {
		s := drill.Sample{Phase: p, Want: want, Sample: probe.Sample{At: at(i * 1000), Outcome: o, Version: version}}
		switch o {
		case probe.OK, probe.WrongVersion:
			s.Latency, s.Status = ms(2+i%4), 200
			if o == probe.WrongVersion {
				s.Err = `version "` + version + `", want "` + want + `"`
			}
		case probe.Refused:
			s.Latency, s.Err = ms(1), "dial tcp 127.0.0.1:8080: connect: connection refused"
		case probe.HTTPError:
			s.Latency, s.Status, s.Err = ms(3), 503, "status 503"
		}
		out = append(out, s)
	}
	return out
}

func baseResult() *drill.Result {
	cfg, err := drill.Config{
		Image:        imgV,
		Windows:      drill.Windows{Live: 10 * time.Second, Outage: 10 * time.Second, Recovery: 10 * time.Second},
		AutoRollback: true,
	}.Normalize()
	if err != nil {
		panic(err)
	}
	return &drill.Result{
		Target: "local", Config: cfg, V: imgV, K: imgK,
		Rollback: drill.RollbackChoice{Kind: drill.RollbackVerified, Tag: imgK.Tag, Reason: "most recent verified image that is not V (pushed 2025-05-31 09:30:00Z)"},
		Started:  t0,
	}
}

// passedResult is a drill with the watchdog: V healthy from 2 s, stopped at 12 s, three refused
// probes, K deployed at 15 s and healthy at 17 s.
func passedResult() *drill.Result {
	r := baseResult()
	r.Ended = at(27900)
	r.Marks = []drill.Mark{
		{Phase: drill.PhaseDeploy, Start: at(0), End: at(2003)},
		{Phase: drill.PhaseLive, Start: at(2003), End: at(12003)},
		{Phase: drill.PhaseStop, Start: at(12003), End: at(12203)},
		{Phase: drill.PhaseOutage, Start: at(12203), End: at(15001)},
		{Phase: drill.PhaseRollback, Start: at(15001), End: at(17004)},
		{Phase: drill.PhaseRecovery, Start: at(17004), End: at(27004)},
		{Phase: drill.PhaseTeardown, Start: at(27004), End: at(27900)},
	}
	var s []drill.Sample
	s = probes(s, drill.PhaseDeploy, 0, 1, probe.Refused, "", imgV.Version)
	s = probes(s, drill.PhaseDeploy, 2, 2, probe.OK, imgV.Version, imgV.Version)
	s = probes(s, drill.PhaseLive, 3, 12, probe.OK, imgV.Version, imgV.Version)
	s = probes(s, drill.PhaseOutage, 13, 15, probe.Refused, "", imgV.Version)
	s = probes(s, drill.PhaseRollback, 16, 16, probe.Refused, "", imgK.Version)
	s = probes(s, drill.PhaseRollback, 17, 17, probe.OK, imgK.Version, imgK.Version)
	s = probes(s, drill.PhaseRecovery, 18, 27, probe.OK, imgK.Version, imgK.Version)
	r.Samples = s
	r.StopAt, r.RollbackAt = at(12003), at(15001)
	r.RollbackTrigger = "watchdog: 3 consecutive failed probes"
	r.VerifiedV = true
	r.Expectations = []drill.Expectation{
		{Phase: drill.PhaseDeploy, Name: "new version becomes healthy", Status: drill.Passed, Message: "a1b2c3d healthy 2.004s after deploy started (3 probes)"},
		{Phase: drill.PhaseLive, Name: "new version stays up through the live window", Status: drill.Passed, Message: "all 10 probes healthy with a1b2c3d"},
		{Phase: drill.PhaseOutage, Name: "nothing answers after stop", Status: drill.Passed, Message: "all 3 probes failed after stop (refused ×3)"},
		{Phase: drill.PhaseRollback, Name: "rollback version becomes healthy", Status: drill.Passed, Message: "9f8e7d6 healthy 2.004s after rollback started (2 probes)"},
		{Phase: drill.PhaseRecovery, Name: "rollback version stays up through the recovery window", Status: drill.Passed, Message: "all 10 probes healthy with 9f8e7d6"},
		{Phase: drill.PhaseTeardown, Name: "teardown releases everything", Status: drill.Passed, Message: "released in 896ms"},
	}
	return r
}

// failedResult is a drill whose stop left V answering for a while and whose rollback deploy
// failed; teardown ran.
func failedResult() *drill.Result {
	r := baseResult()
	r.Config.AutoRollback = false
	r.Ended = at(25500)
	r.Marks = []drill.Mark{
		{Phase: drill.PhaseDeploy, Start: at(0), End: at(2003)},
		{Phase: drill.PhaseLive, Start: at(2003), End: at(12003)},
		{Phase: drill.PhaseStop, Start: at(12003), End: at(12103)},
		{Phase: drill.PhaseOutage, Start: at(12103), End: at(22103)},
		{Phase: drill.PhaseRollback, Start: at(22103), End: at(25000)},
		{Phase: drill.PhaseTeardown, Start: at(25000), End: at(25500)},
	}
	var s []drill.Sample
	s = probes(s, drill.PhaseDeploy, 0, 1, probe.Refused, "", imgV.Version)
	s = probes(s, drill.PhaseDeploy, 2, 2, probe.OK, imgV.Version, imgV.Version)
	s = probes(s, drill.PhaseLive, 3, 12, probe.OK, imgV.Version, imgV.Version)
	s = probes(s, drill.PhaseOutage, 13, 15, probe.OK, imgV.Version, imgV.Version)
	s = probes(s, drill.PhaseOutage, 16, 22, probe.Refused, "", imgV.Version)
	s = probes(s, drill.PhaseRollback, 23, 24, probe.Refused, "", imgK.Version)
	r.Samples = s
	r.StopAt, r.RollbackAt = at(12003), at(22103)
	r.RollbackTrigger = "outage window of 10s elapsed"
	r.VerifiedV = true
	r.Error = "rollback: deploy 9f8e7d6: port 8080 in use"
	r.Warnings = []string{"prepare 9f8e7d6: pull failed (the rollback will fetch it)"}
	r.Expectations = []drill.Expectation{
		{Phase: drill.PhaseDeploy, Name: "new version becomes healthy", Status: drill.Passed, Message: "a1b2c3d healthy 2.004s after deploy started (3 probes)"},
		{Phase: drill.PhaseLive, Name: "new version stays up through the live window", Status: drill.Passed, Message: "all 10 probes healthy with a1b2c3d"},
		{Phase: drill.PhaseOutage, Name: "nothing answers after stop", Status: drill.Failed, Message: `3 of 10 probes still answered after stop; the first 897ms into the window, version "a1b2c3d"`},
		{Phase: drill.PhaseRollback, Name: "rollback version becomes healthy", Status: drill.Failed, Message: r.Error},
		{Phase: drill.PhaseRecovery, Name: "rollback version stays up through the recovery window", Status: drill.NotRun},
		{Phase: drill.PhaseTeardown, Name: "teardown releases everything", Status: drill.Passed, Message: "released in 500ms"},
	}
	return r
}

// The fleet fixture's hosts, in rollout order: the faulty one first.
const (
	hostA = "i-0c4f2a9e71b3d5a08" // faulted
	hostB = "i-05e7b1d9c3a2f6e41"
	hostC = "i-0b8d3f6a2c9e1f7d5"
)

// hostTimeline is one host's state as the load balancer saw it, second by second: each entry
// holds from its second to the next entry's.
type hostTimeline []struct {
	from          int
	state, reason string
}

func (tl hostTimeline) at(second int) (string, string) {
	state, reason := "", ""
	for _, e := range tl {
		if e.from <= second {
			state, reason = e.state, e.reason
		}
	}
	return state, reason
}

const (
	registering = "Elb.RegistrationInProgress"
	deregister  = "Target.DeregistrationInProgress"
	notInUse    = "Target.NotRegistered"
)

// fleetResult is a drill of three hosts behind a load balancer, rolling deploys, the first
// host killed: V rolls out host by host (not registered, initial, healthy) and is healthy at
// 3 s; the kill at 17.0 s hits host A, which the load balancer finds unhealthy at 19.5 s, one
// failed probe and a few failed user requests later; that trips the rollback at 20.0 s, which
// replaces A, B and C in turn (draining, not registered, initial, healthy) with no user
// request failing; one poll of the load balancer fails in the recovery window.
func fleetResult() *drill.Result {
	r := baseResult()
	r.Target = "aws"
	r.Config.Fault = drill.Fault{Kind: drill.FaultKill}
	r.Config.LoadRPS = 5
	r.Config.Fleet = drill.FleetShape{Hosts: 3, FaultHosts: 1}
	r.Ended = at(45900)
	r.Marks = []drill.Mark{
		{Phase: drill.PhaseDeploy, Start: at(0), End: at(7003)},
		{Phase: drill.PhaseLive, Start: at(7003), End: at(17003)},
		{Phase: drill.PhaseStop, Start: at(17003), End: at(17603)},
		{Phase: drill.PhaseOutage, Start: at(17603), End: at(20001)},
		{Phase: drill.PhaseRollback, Start: at(20001), End: at(34004)},
		{Phase: drill.PhaseRecovery, Start: at(34004), End: at(44004)},
		{Phase: drill.PhaseTeardown, Start: at(44004), End: at(45900)},
	}
	phaseAt := func(t time.Time) drill.Phase {
		p := r.Marks[0].Phase
		for _, m := range r.Marks {
			if !t.Before(m.Start) {
				p = m.Phase
			}
		}
		return p
	}
	var s []drill.Sample
	s = probes(s, drill.PhaseDeploy, 0, 2, probe.HTTPError, "", imgV.Version) // no host in rotation yet
	s = probes(s, drill.PhaseDeploy, 3, 6, probe.OK, imgV.Version, imgV.Version)
	s = probes(s, drill.PhaseLive, 7, 17, probe.OK, imgV.Version, imgV.Version)
	s = probes(s, drill.PhaseOutage, 18, 18, probe.HTTPError, "", imgV.Version) // routed to the killed host
	s[len(s)-1].Status, s[len(s)-1].Err = 502, "status 502"
	s = probes(s, drill.PhaseOutage, 19, 19, probe.OK, imgV.Version, imgV.Version)
	s = probes(s, drill.PhaseRollback, 20, 24, probe.WrongVersion, imgV.Version, imgK.Version) // B and C still serve V
	for i := 25; i <= 29; i++ {
		if i%2 == 0 {
			s = probes(s, drill.PhaseRollback, i, i, probe.WrongVersion, imgV.Version, imgK.Version)
		} else {
			s = probes(s, drill.PhaseRollback, i, i, probe.OK, imgK.Version, imgK.Version)
		}
	}
	s = probes(s, drill.PhaseRollback, 30, 33, probe.OK, imgK.Version, imgK.Version)
	s = probes(s, drill.PhaseRecovery, 34, 43, probe.OK, imgK.Version, imgK.Version)
	r.Samples = s

	for t := 7100; t < 44004; t += 200 { // the users' load, 5/s from the live window on
		q := drill.RequestSample{Phase: phaseAt(at(t)), UserRequest: drill.UserRequest{At: at(t), Outcome: probe.OK, Latency: ms(3), Status: 200}}
		if t > 17003 && t < 19500 && (t/200)%3 == 0 { // a third of them reached the killed host
			q.Outcome, q.Status = probe.HTTPError, 502
		}
		r.Requests = append(r.Requests, q)
	}

	timelines := map[string]hostTimeline{
		hostA: {{0, "initial", registering}, {2, "healthy", ""}, {19, "unhealthy", "Target.FailedHealthChecks"},
			{21, "draining", deregister}, {22, "", ""}, {23, "initial", registering}, {25, "healthy", ""}},
		hostB: {{0, "", ""}, {2, "initial", registering}, {4, "healthy", ""},
			{26, "draining", deregister}, {27, "", ""}, {28, "initial", registering}, {29, "healthy", ""}},
		hostC: {{0, "", ""}, {4, "initial", registering}, {6, "healthy", ""},
			{30, "draining", deregister}, {31, "", ""}, {32, "initial", registering}, {33, "healthy", ""}},
	}
	fleet := &drill.FleetResult{FleetInfo: drill.FleetInfo{
		Hosts: []string{hostA, hostB, hostC}, Faulty: []string{hostA}, Balancer: "deploydrill-r7f3c-alb", Rolling: true}}
	for second := 0; second <= 43; second++ { // a poll each second, half a second after the probe
		p := drill.HostSample{At: at(second*1000 + 500)}
		p.Phase = phaseAt(p.At)
		if second == 38 {
			p.Err = "describe target health: operation error Elastic Load Balancing v2: DescribeTargetHealth, ThrottlingException: Rate exceeded"
		} else {
			for _, h := range []string{hostB, hostC, hostA} { // sorted by host, as the drill polls
				if state, reason := timelines[h].at(second); state != "" {
					p.Hosts = append(p.Hosts, drill.HostState{Host: h, State: state, Reason: reason})
				}
			}
		}
		fleet.Samples = append(fleet.Samples, p)
	}
	r.Fleet = fleet

	r.StopAt, r.FaultAt, r.RollbackAt = at(17003), at(17603), at(20001)
	r.RollbackTrigger = "load balancer: " + hostA + " unhealthy (Target.FailedHealthChecks)"
	r.VerifiedV = true
	r.Expectations = []drill.Expectation{
		{Phase: drill.PhaseDeploy, Name: "new version becomes healthy", Status: drill.Passed, Message: "a1b2c3d healthy 3.005s after deploy started (4 probes)"},
		{Phase: drill.PhaseLive, Name: "new version stays up through the live window", Status: drill.Passed, Message: "all 11 probes healthy with a1b2c3d"},
		{Phase: drill.PhaseOutage, Name: "the load balancer takes the faulty hosts out of rotation", Status: drill.Passed,
			Message: "out of rotation: " + hostA + " after 1.897s; 2 of 3 hosts kept serving"},
		{Phase: drill.PhaseRollback, Name: "rollback version becomes healthy", Status: drill.Passed, Message: "9f8e7d6 healthy 5.002s after rollback started (6 probes)"},
		{Phase: drill.PhaseRecovery, Name: "rollback version stays up through the recovery window", Status: drill.Passed, Message: "all 10 probes healthy with 9f8e7d6"},
		{Phase: drill.PhaseTeardown, Name: "teardown releases everything", Status: drill.Passed, Message: "released in 1.896s"},
	}
	return r
}
