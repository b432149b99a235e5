package drill

import "testing"

func TestWatchdog(t *testing.T) {
	const F, O = false, true // a failed probe, an ok one
	tests := []struct {
		name    string
		cfg     Config
		probes  []bool
		tripsAt int // index of the probe that trips it; -1 never
		reason  string
	}{
		{"three in a row trip it", Config{FailuresToRollback: 3}, []bool{O, F, F, F, O}, 3, "3 consecutive failed probes"},
		{"an ok probe resets the run", Config{FailuresToRollback: 3}, []bool{F, F, O, F, F, O, F, F}, -1, ""},
		{"a flapping service never fails three in a row", Config{FailuresToRollback: 3}, []bool{F, O, F, O, F, F, O, F}, -1, ""},
		{"3 of the last 5 catch the flapping one", Config{FailuresToRollback: 3, FailureWindow: 5, FailureRatio: 0.6}, []bool{F, O, F, O, F, F, O, F}, 4, "3 of the last 5 probes failed"},
		{"the window needs five probes before it judges", Config{FailuresToRollback: 9, FailureWindow: 5, FailureRatio: 0.6}, []bool{F, F, O, O}, -1, ""},
		{"old failures slide out of the window", Config{FailuresToRollback: 9, FailureWindow: 5, FailureRatio: 0.6}, []bool{F, F, O, O, O, O, F, O, O, F}, -1, ""},
		{"whichever rule trips first", Config{FailuresToRollback: 2, FailureWindow: 5, FailureRatio: 0.6}, []bool{O, O, F, F}, 3, "2 consecutive failed probes"},
		{"a ratio rounds up: 0.5 of 5 needs 3", Config{FailuresToRollback: 9, FailureWindow: 5, FailureRatio: 0.5}, []bool{F, F, O, O, O, O, F, F, O, F}, 9, "3 of the last 5 probes failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWatchdog(tt.cfg)
			got := -1
			for i, ok := range tt.probes {
				if w.see(ok) {
					got = i
					break
				}
			}
			if got != tt.tripsAt || w.reason() != tt.reason {
				t.Errorf("tripped at %d (%q), want %d (%q)", got, w.reason(), tt.tripsAt, tt.reason)
			}
		})
	}
}
