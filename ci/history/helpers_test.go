package history_test

import (
	"fmt"
	"time"

	"github.com/deploydrill/deploydrill/ci/history"
)

// day1 is when the first fixture drill ran.
var day1 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// drillRecord is the n-th drill (from 1) of a daily series on local with a stop fault.
// A negative figure is not measured.
func drillRecord(n int, ttdMS, ttrMS float64) history.Record {
	opt := func(ms float64) *float64 {
		if ms < 0 {
			return nil
		}
		return history.Float(ms)
	}
	return history.Record{
		RunID:        fmt.Sprintf("run-%03d", n),
		At:           day1.Add(time.Duration(n-1) * 24 * time.Hour),
		Target:       "local",
		V:            fmt.Sprintf("v%07x", n),
		K:            fmt.Sprintf("k%07x", n),
		Fault:        "stop",
		TTDMS:        opt(ttdMS),
		TTRMS:        opt(ttrMS),
		DowntimeMS:   opt(ttdMS + ttrMS),
		Availability: history.Availability{Live: history.Float(1), Outage: history.Float(0), Recovery: history.Float(0.95)},
		Probes:       180,
		FailedProbes: 9,
		Passed:       true,
		Report:       fmt.Sprintf("drill-report-%d/report.json", n),
	}
}

// series is drills 1..len(ttrMS), each with a TTD of 500 ms and the given TTRs.
func series(ttrMS ...float64) []history.Record {
	out := make([]history.Record, len(ttrMS))
	for i, ms := range ttrMS {
		out[i] = drillRecord(i+1, 500, ms)
	}
	return out
}

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
