package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// BenchmarkLocalDrill runs whole drills (build, test, publish, 2 s windows, 100 ms probes, a new
// version each time rolled back to the previous one) with a warm cache and reports medians: the goals are detection <= 250 ms, recovery <= 3 s
// and the whole drill <= 30 s.
//
//	go test -run '^$' -bench LocalDrill -benchtime 5x ./ci
func BenchmarkLocalDrill(b *testing.B) {
	testenv.Dagger(b)
	cache := b.TempDir()
	prefix := randomVersion("bench")
	version := prefix + "-0"
	args := func() []string {
		return []string{
			"--base-image", testenv.BaseImage(b), "--cache-dir", cache, "--report-dir", filepath.Join(b.TempDir(), "r"),
			"--version", version, "--listen", freePort(b),
			"--live", "2s", "--outage", "2s", "--recovery", "2s", "--interval", "100ms",
		}
	}
	// One drill outside the measurement warms the engine and leaves a verified K, so every
	// measured drill rolls back to the previous one's version, as a real drill would.
	if err := dispatch(b.Context(), args(), &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		b.Fatal(err)
	}
	var detect, recover, whole []float64
	b.ResetTimer()
	for i := range b.N {
		version = fmt.Sprintf("%s-%d", prefix, i+1)
		var stdout, stderr bytes.Buffer
		start := time.Now()
		a := args()
		if err := dispatch(b.Context(), a, &stdout, &stderr); err != nil {
			b.Fatalf("drill: %v\n%s", err, stderr.String())
		}
		whole = append(whole, time.Since(start).Seconds())
		r := readReport(b, filepath.Join(a[5], "report.json"))
		detect = append(detect, *r.Figures.Detect)
		recover = append(recover, *r.Figures.Recover)
	}
	b.ReportMetric(median(detect), "detect-ms")
	b.ReportMetric(median(recover), "recover-ms")
	b.ReportMetric(median(whole), "drill-s")
	b.Logf("detect ms %v; recover ms %v; drill s %v", detect, recover, whole)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
