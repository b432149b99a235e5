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
