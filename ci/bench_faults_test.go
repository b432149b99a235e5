package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// The fault benchmarks run b.N whole drills per fault kind with 100 ms probes and the watchdog
// on, and report the medians of detection (fault in effect → first failed probe) and recovery
// (rollback start → healthy). The goals: detection ≤ interval (+ the probe timeout for
// hang, partition, slow) + 50 ms; bad-deploy caught and back on healthy V ≤ 2 s after the bad
// version went live (detect-ms + recover-ms).
//
//	go test -run '^$' -bench 'LocalFaults' -benchtime 5x ./ci
//	go test -run '^$' -bench 'AWSFaults' -benchtime 5x ./ci
func BenchmarkLocalFaults(b *testing.B) {
	testenv.Dagger(b)
	cache := b.TempDir()
	benchFaults(b, func(version, reportDir string, extra ...string) []string {
		return append([]string{"--base-image", testenv.BaseImage(b), "--cache-dir", cache, "--report-dir", reportDir,
			"--version", version, "--listen", freePort(b)}, extra...)
	})
}

func BenchmarkAWSFaults(b *testing.B) {
	testenv.Dagger(b)
	l := awslab.Start(b, awslab.Options{FirstIndex: awsLabIndex})
	l.Setenv(b)
	cache := b.TempDir()
	benchFaults(b, func(version, reportDir string, extra ...string) []string {
		return append(append(l.Args(), "--base-image", testenv.BaseImage(b), "--cache-dir", cache, "--report-dir", reportDir,
			"--version", version), extra...)
	})
	l.AssertNothingLeft(b)
}

var benchFaultKinds = []string{"stop", "kill", "hang", "crashloop", "partition", "slow", "bad-deploy"}

func benchFaults(b *testing.B, args func(version, reportDir string, extra ...string) []string) {
	prefix := randomVersion("fb")
	drill := func(version string, extra ...string) report.Report {
		dir := b.TempDir()
		var stdout, stderr bytes.Buffer
		a := args(version, dir, append([]string{"--live", "2s", "--outage", "5s", "--recovery", "2s", "--interval", "100ms",
			"--auto-rollback", "--failure-window", "5", "--history", "off"}, extra...)...)
		if err := dispatch(b.Context(), a, &stdout, &stderr); err != nil {
			b.Fatalf("drill %s: %v\n%s", version, err, stderr.String())
		}
		return readFullReport(b, dir)
	}
	drill(prefix + "-warm") // warms the engine and leaves a verified K
	for _, kind := range benchFaultKinds {
		b.Run(kind, func(b *testing.B) {
			var detect, recover, whole []float64
			for i := range b.N {
				r := drill(fmt.Sprintf("%s-%s-%d", prefix, kind, i), "--fault", kind)
				f := r.Figures
				if !r.Passed || f.TimeToDetectMS == nil || f.TimeToRecoverMS == nil || f.FaultToHealthyMS == nil {
					b.Fatalf("%s drill %d did not pass with every figure: %+v", kind, i, r.Expectations)
				}
				detect = append(detect, *f.TimeToDetectMS)
				recover = append(recover, *f.TimeToRecoverMS)
				whole = append(whole, *f.FaultToHealthyMS)
			}
			b.ReportMetric(median(detect), "detect-ms")
			b.ReportMetric(median(recover), "recover-ms")
			b.ReportMetric(median(whole), "fault-to-healthy-ms")
			b.Logf("%s: detect ms %v; recover ms %v; fault to healthy ms %v", kind, detect, recover, whole)
		})
	}
}
