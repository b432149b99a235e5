package drill

import (
	"fmt"
	"math"
)

// watchdog decides when a failing service is rolled back, like a deploy tool's circuit breaker:
// after N consecutive failed probes (--failures), or, with a window set, when at least a ratio
// of the last W probes failed (--failure-window, --failure-ratio: 3 of the last 5 by default
// ratio 0.6), which also catches a flapping service that never fails N times in a row.
type watchdog struct {
	consecutive int    // N
	window      int    // W; 0: the window rule is off
	needed      int    // failures among the last W that trip it: ceil(ratio × W)
	run         int    // current run of consecutive failures
	last        []bool // the last W outcomes, true = failed (a ring)
	next        int    // where the next outcome goes in last
	seen        int    // outcomes seen, up to W
	tripped     string // which rule tripped
}

func newWatchdog(c Config) *watchdog {
	w := &watchdog{consecutive: c.FailuresToRollback, window: c.FailureWindow}
	if w.window > 0 {
		w.needed = max(1, int(math.Ceil(c.FailureRatio*float64(w.window)-1e-9)))
		w.last = make([]bool, w.window)
	}
	return w
}

// see records one probe and reports whether the watchdog trips.
func (w *watchdog) see(ok bool) bool {
	if ok {
		w.run = 0
	} else {
		w.run++
	}
	if w.run >= w.consecutive {
		w.tripped = fmt.Sprintf("%d consecutive failed probes", w.consecutive)
		return true
	}
	if w.window == 0 {
		return false
	}
	w.last[w.next] = !ok
	w.next = (w.next + 1) % w.window
	w.seen = min(w.seen+1, w.window)
	failed := 0
	for _, f := range w.last[:w.seen] {
		if f {
			failed++
		}
	}
	if w.seen == w.window && failed >= w.needed {
		w.tripped = fmt.Sprintf("%d of the last %d probes failed", failed, w.window)
		return true
	}
	return false
}

func (w *watchdog) reason() string { return w.tripped }

// watchdogRule words the rule for the log.
func (r *run) watchdogRule() string {
	w := newWatchdog(r.cfg)
	rule := fmt.Sprintf("%d consecutive failed probes", w.consecutive)
	if w.window > 0 {
		rule += fmt.Sprintf(" or %d failed of the last %d", w.needed, w.window)
	}
	return rule
}
