package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// BenchmarkAWSDrill runs whole drills on the AWS target in the lab (2 s windows, 100 ms probes,
// a new version each time, rolled back to the previous one with K pre-pulled) and reports
// medians. The goals: rollback start to healthy <= 3 s; everything but the windows and
// the boot wait <= 20 s warm.
//
//	go test -run '^$' -bench AWSDrill -benchtime 5x ./ci
func BenchmarkAWSDrill(b *testing.B) {
	testenv.Dagger(b)
	l := awslab.Start(b, awslab.Options{FirstIndex: awsLabIndex})
	l.Setenv(b)
	cache := b.TempDir()
	// run is one drill; it returns how long it took, its progress lines and its report.
	run := func(version string) (time.Duration, string, drillReport) {
		reportDir := b.TempDir()
		args := append(l.Args(),
			"--base-image", testenv.BaseImage(b), "--cache-dir", cache, "--report-dir", reportDir,
			"--version", version, "--live", "2s", "--outage", "2s", "--recovery", "2s", "--interval", "100ms")
		var stdout, stderr bytes.Buffer
		start := time.Now()
		if err := dispatch(b.Context(), args, &stdout, &stderr); err != nil {
			b.Fatalf("drill: %v\n%s", err, stderr.String())
		}
		return time.Since(start), stderr.String(), readReport(b, filepath.Join(reportDir, "report.json"))
	}
	prefix := randomVersion("bench")
	run(prefix + "-0") // warms the engine and leaves a verified K
	var recover, whole, rest []float64
	b.ResetTimer()
	for i := range b.N {
		took, progress, r := run(fmt.Sprintf("%s-%d", prefix, i+1))
		if r.Figures.Recover == nil || !r.Passed || r.Rollback.Kind != "verified" {
			b.Fatalf("drill %d did not pass with a rollback to a verified K:\n%s", i+1, progress)
		}
		boot := stageDuration(b, progress, "provision")
		recover = append(recover, *r.Figures.Recover)
		whole = append(whole, took.Seconds())
		rest = append(rest, (took - 6*time.Second - boot).Seconds())
	}
	b.ReportMetric(median(recover), "recover-ms")
	b.ReportMetric(median(whole), "drill-s")
	b.ReportMetric(median(rest), "non-window-non-boot-s")
	b.Logf("recover ms %v; drill s %v; all but windows and boot s %v", recover, whole, rest)
	l.AssertNothingLeft(b)
}

var stageDone = regexp.MustCompile(`(?m) (\S+)\s+done in (\S+)$`)

// stageDuration reads "<stage> done in <duration>" from the progress lines.
func stageDuration(b *testing.B, progress, stage string) time.Duration {
	for _, m := range stageDone.FindAllStringSubmatch(progress, -1) {
		if m[1] == stage {
			d, err := time.ParseDuration(m[2])
			if err != nil {
				b.Fatal(err)
			}
			return d
		}
	}
	b.Fatalf("no %q stage in the progress:\n%s", stage, progress)
	return 0
}
