package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

// BenchmarkAWSFleet runs b.N fleet drills per fault kind in the lab: 3 hosts behind HAProxy as
// the load balancer, the fault on one, the users' load on, the watchdog on, a rolling rollback
// to a verified K on all three. The lab runs the target group's clock five times faster
// (labSecond), so the load balancer's figures are a fifth of what the same flags give on AWS.
// It reports the medians of lb-out-ms (the fault to the load balancer routing to the faulty
// host no more; expect about health check interval × unhealthy threshold, 5 s × 2 = 2000 ms
// here), rollback-failed (users' requests that failed during the rolling rollback; goal 0),
// outage-error-% (users' error rate while the load balancer routed around the faulty host) and
// beyond-windows-ms (the drill's time outside its windows: the rolling deploy of V, the fault,
// the rolling rollback, the teardown; boot excluded).
//
//	go test -run '^$' -bench 'AWSFleet' -benchtime 3x ./ci
func BenchmarkAWSFleet(b *testing.B) {
	testenv.Dagger(b)
	l := startFleetLab(b)
	l.Setenv(b)
	cache := b.TempDir()
	prefix := randomVersion("fl")
	drill := func(version string, extra ...string) report.Report {
		dir := b.TempDir()
		args := append(append(l.Args(), "--base-image", testenv.BaseImage(b), "--cache-dir", cache, "--report-dir", dir,
			"--version", version, "--live", "2s", "--recovery", "2s", "--interval", "100ms", "--history", "off"), fleetArgs...)
		var stdout, stderr bytes.Buffer
		if err := dispatch(b.Context(), append(args, extra...), &stdout, &stderr); err != nil {
			b.Fatalf("fleet drill %s: %v\n%s", version, err, stderr.String())
		}
		return readFullReport(b, dir)
	}
	drill(prefix + "-warm") // warms the engine and leaves a verified K
	for _, kind := range benchFaultKinds {
		b.Run(kind, func(b *testing.B) {
			var out, failed, errRate, beyond []float64
			for i := range b.N {
				extra := []string{"--fault", kind}
				if kind == "crashloop" { // up 2 s, down for docker's doubling back-off: out once it is down 2 checks long
					extra = append(extra, "--outage", "40s")
				}
				r := drill(fmt.Sprintf("%s-%s-%d", prefix, kind, i), extra...)
				ff := r.Figures.Fleet
				if !r.Passed || ff == nil || ff.OutOfRotationMS == nil || ff.RollbackUsers == nil || ff.OutageUsers == nil {
					b.Fatalf("%s fleet drill %d did not pass with every figure: %+v", kind, i, r.Expectations)
				}
				out = append(out, *ff.OutOfRotationMS)
				failed = append(failed, float64(ff.RollbackUsers.Failed))
				errRate = append(errRate, 100*ff.OutageUsers.ErrorRate)
				var outside float64
				for _, p := range r.Phases {
					switch p.Phase {
					case "deploy", "stop", "rollback", "teardown":
						outside += p.DurationMS
					}
				}
				beyond = append(beyond, outside)
			}
			b.ReportMetric(median(out), "lb-out-ms")
			b.ReportMetric(median(failed), "rollback-failed")
			b.ReportMetric(median(errRate), "outage-error-%")
			b.ReportMetric(median(beyond), "beyond-windows-ms")
			b.Logf("%s: lb out ms %v; rollback failed %v; outage error %% %v; beyond windows ms %v", kind, out, failed, errRate, beyond)
		})
	}
	l.AssertNothingLeft(b)
}
