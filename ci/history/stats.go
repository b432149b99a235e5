package history

import (
	"math"
	"slices"
	"time"
)

// CompareLast is how many previous drills Compare measures a drill against.
const CompareLast = 10

// Median is the middle duration (the mean of the two middle ones for an even count); 0 for none.
func Median(ds []time.Duration) time.Duration { return Quantile(ds, 0.5) }

// Quantile is the q-quantile (0..1) of ds, interpolating linearly between the closest ranks
// (the usual definition, R's type 7: p90 of 1..10 s is 9.1 s); 0 for none.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q = min(max(q, 0), 1)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	frac := h - float64(lo)
	return s[lo] + time.Duration(math.Round(frac*float64(s[lo+1]-s[lo])))
}

// TTDs are the measured times to detect, in record order.
func TTDs(records []Record) []time.Duration { return measured(records, Record.TTD) }

// TTRs are the measured times to recover, in record order.
func TTRs(records []Record) []time.Duration { return measured(records, Record.TTR) }

func measured(records []Record, figure func(Record) (time.Duration, bool)) []time.Duration {
	out := []time.Duration{}
	for _, r := range records {
		if d, ok := figure(r); ok {
			out = append(out, d)
		}
	}
	return out
}

// Query selects records; zero fields select everything.
type Query struct {
	Target string // only this target
	Fault  string // only this fault kind
	Last   int    // only the last N (by time) of those that match; 0 keeps all
}

// Filter returns the records q selects, oldest first.
func Filter(records []Record, q Query) []Record {
	out := []Record{}
	for _, r := range records {
		if (q.Target == "" || r.Target == q.Target) && (q.Fault == "" || r.Fault == q.Fault) {
			out = append(out, r)
		}
	}
	sortByTime(out)
	if q.Last > 0 && len(out) > q.Last {
		out = out[len(out)-q.Last:]
	}
	return out
}

// cohort is the previous drills current is measured against: same target and fault, not
// current itself, with a TTR, the last n of them (all when n is 0), oldest first.
func cohort(current Record, previous []Record, n int) []Record {
	var out []Record
	for _, r := range Filter(previous, Query{Target: current.Target, Fault: current.Fault}) {
		if _, ok := r.TTR(); ok && r.RunID != current.RunID {
			out = append(out, r)
		}
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// Compare says how current's TTR compares with the median TTR of the last CompareLast
// previous drills of the same target and fault (previous may hold any others):
// "TTR 1.2 s: 8% faster than the median of the last 10 drills".
func Compare(current Record, previous []Record) string {
	ttr, ok := current.TTR()
	if !ok {
		return "TTR not measured"
	}
	head := "TTR " + human(ttr) + ": "
	c := cohort(current, previous, CompareLast)
	if len(c) == 0 {
		return head + "the first drill with a TTR"
	}
	than := "the median of the last " + itoa(len(c)) + " drills"
	if len(c) == 1 {
		than = "the previous drill"
	}
	med := Median(TTRs(c))
	if med == 0 {
		if ttr == 0 {
			return head + "the same as " + than
		}
		return head + "slower than " + than + " (0 ms)"
	}
	change := math.Round(100 * float64(ttr-med) / float64(med))
	switch {
	case change == 0:
		return head + "the same as " + than
	case change < 0:
		return head + ftoa(-change) + "% faster than " + than
	}
	return head + ftoa(change) + "% slower than " + than
}
