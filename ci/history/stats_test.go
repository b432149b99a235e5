package history_test

import (
	"slices"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/history"
)

func seconds(s ...float64) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, v := range s {
		out[i] = time.Duration(v * float64(time.Second))
	}
	return out
}

func TestMedianAndQuantile(t *testing.T) {
	tests := []struct {
		name   string
		in     []time.Duration
		median time.Duration
		p90    time.Duration
	}{
		{"no drills have neither", nil, 0, 0},
		{"one drill is its own median and p90", seconds(5), 5 * time.Second, 5 * time.Second},
		{"an odd count takes the middle, in any order", seconds(1, 3, 2), 2 * time.Second, 2800 * time.Millisecond},
		{"an even count takes the mean of the two middle ones", seconds(4, 1, 3, 2), 2500 * time.Millisecond, 3700 * time.Millisecond},
		{"p90 of 1..10 s interpolates between 9 and 10 s", seconds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 5500 * time.Millisecond, 9100 * time.Millisecond},
		{"p90 of two is nine tenths of the way", []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, 150 * time.Millisecond, 190 * time.Millisecond},
		{"equal values stay put", seconds(2, 2, 2, 2), 2 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			if got := history.Median(tt.in); got != tt.median {
				t.Errorf("median %v, want %v", got, tt.median)
			}
			if got := history.Quantile(tt.in, 0.9); got != tt.p90 {
				t.Errorf("p90 %v, want %v", got, tt.p90)
			}
			if !slices.Equal(in, tt.in) {
				t.Error("the input was reordered")
			}
		})
	}
	t.Run("q 0 and 1 are the extremes, beyond them clamped", func(t *testing.T) {
		in := seconds(3, 1, 2)
		for q, want := range map[float64]time.Duration{0: time.Second, 1: 3 * time.Second, -1: time.Second, 2: 3 * time.Second} {
			if got := history.Quantile(in, q); got != want {
				t.Errorf("q %v: %v, want %v", q, got, want)
			}
		}
	})
}

func TestTTDsAndTTRsLeaveOutWhatWasNotMeasured(t *testing.T) {
	records := []history.Record{drillRecord(1, 400, 1000), drillRecord(2, -1, 1100), drillRecord(3, 600, -1)}
	if got, want := history.TTDs(records), []time.Duration{ms(400), ms(600)}; !slices.Equal(got, want) {
		t.Errorf("TTDs %v, want %v", got, want)
	}
	if got, want := history.TTRs(records), []time.Duration{ms(1000), ms(1100)}; !slices.Equal(got, want) {
		t.Errorf("TTRs %v, want %v", got, want)
	}
}

func TestFilter(t *testing.T) {
	records := series(1, 2, 3, 4, 5, 6)
	records[1].Target, records[4].Target = "aws", "aws"
	records[2].Fault = "kill"
	slices.Reverse(records) // Filter sorts by time
	ids := func(rs []history.Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.RunID)
		}
		return out
	}
	tests := []struct {
		name string
		q    history.Query
		want []string
	}{
		{"an empty query keeps everything, oldest first", history.Query{}, []string{"run-001", "run-002", "run-003", "run-004", "run-005", "run-006"}},
		{"by target", history.Query{Target: "aws"}, []string{"run-002", "run-005"}},
		{"by fault", history.Query{Fault: "kill"}, []string{"run-003"}},
		{"the last N of all", history.Query{Last: 2}, []string{"run-005", "run-006"}},
		{"the last N of those that match", history.Query{Target: "local", Fault: "stop", Last: 2}, []string{"run-004", "run-006"}},
		{"a last N beyond the count keeps all that match", history.Query{Target: "aws", Last: 10}, []string{"run-002", "run-005"}},
		{"nothing matches", history.Query{Target: "gcp"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(history.Filter(records, tt.q)); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	// Ten previous TTRs whose median is 1.3 s (the mean of 1300 and 1300).
	ten := []float64{1000, 1100, 1200, 1300, 1300, 1300, 1400, 1500, 1600, 1700}
	current := func(ttrMS float64) history.Record { return drillRecord(20, 500, ttrMS) }
	other := series(9000, 9000)
	other[0].Target, other[1].Fault = "aws", "kill"
	tests := []struct {
		name     string
		current  history.Record
		previous []history.Record
		want     string
	}{
		{"faster than the median", current(1200), series(ten...), "TTR 1.2 s: 8% faster than the median of the last 10 drills"},
		{"slower than the median", current(1560), series(ten...), "TTR 1.6 s: 20% slower than the median of the last 10 drills"},
		{"only the last ten count", current(1200), series(append([]float64{9000, 9000}, ten...)...), "TTR 1.2 s: 8% faster than the median of the last 10 drills"},
		{"other targets and faults do not count", current(1200), append(series(ten[:3]...), other...), "TTR 1.2 s: 9% slower than the median of the last 3 drills"},
		{"within half a percent is the same", current(1304), series(ten...), "TTR 1.3 s: the same as the median of the last 10 drills"},
		{"one previous drill is the previous drill", current(900), series(1000), "TTR 900 ms: 10% faster than the previous drill"},
		{"no previous drill", current(1200), nil, "TTR 1.2 s: the first drill with a TTR"},
		{"previous drills without a TTR do not count", current(1200), series(-1, -1), "TTR 1.2 s: the first drill with a TTR"},
		{"the drill itself is not its own history", current(1200), []history.Record{current(1200)}, "TTR 1.2 s: the first drill with a TTR"},
		{"a drill that did not recover", current(-1), series(ten...), "TTR not measured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := history.Compare(tt.current, tt.previous); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
