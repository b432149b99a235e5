package history

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// Budget is an SLO's error budget: the downtime a window may have and still meet the SLO.
type Budget struct {
	SLO    float64       // percent, e.g. 99.9
	Window time.Duration // e.g. 30 days
}

// Validate rejects an SLO outside (0, 100) and a window that is not positive.
func (b Budget) Validate() error {
	switch {
	case math.IsNaN(b.SLO) || b.SLO <= 0 || b.SLO >= 100:
		return fmt.Errorf("error budget: SLO %s is not between 0%% and 100%%", pct(b.SLO))
	case b.Window <= 0:
		return fmt.Errorf("error budget: window %s is not positive", b.Window)
	}
	return nil
}

// Allowed is the downtime the window allows: Window × (1 − SLO/100), to the microsecond.
func (b Budget) Allowed() time.Duration {
	us := float64(b.Window) * (100 - b.SLO) / 100 / float64(time.Microsecond)
	return time.Duration(math.Round(us)) * time.Microsecond
}

// Use is the fraction of the budget downtime uses (1 is all of it); 0 for an invalid budget.
func (b Budget) Use(downtime time.Duration) float64 {
	allowed := b.Allowed()
	if b.Validate() != nil || allowed <= 0 {
		return 0
	}
	return float64(downtime) / float64(allowed)
}

// usePercent is Use in percent, computed so that round figures stay exact.
func (b Budget) usePercent(downtime time.Duration) float64 {
	allowed := b.Allowed()
	if b.Validate() != nil || allowed <= 0 {
		return 0
	}
	return float64(downtime) * 100 / float64(allowed)
}

// Describe is how much of the budget downtime uses: "7.0 s of 43.2 min, 0.27%".
func (b Budget) Describe(downtime time.Duration) string {
	return fmt.Sprintf("%s of %s, %.2f%%", human(downtime), human(b.Allowed()), b.usePercent(downtime))
}

// String is the budget itself: "99.9% over 30d (43.2 min)".
func (b Budget) String() string {
	return fmt.Sprintf("%s over %s (%s)", pct(b.SLO), FormatWindow(b.Window), human(b.Allowed()))
}

var daysRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)d(.*)$`)

// ParseWindow reads a window as time.ParseDuration does, with d for days: "30d", "7d",
// "12h", "1d12h".
func ParseWindow(s string) (time.Duration, error) {
	var d time.Duration
	rest := s
	if m := daysRE.FindStringSubmatch(s); m != nil {
		days, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("parse window %q: %w", s, err)
		}
		d, rest = time.Duration(days*float64(24*time.Hour)), m[2]
	}
	if rest != "" {
		more, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("parse window %q: want a duration like 30d, 7d or 12h", s)
		}
		if more < 0 {
			return 0, fmt.Errorf("parse window %q: want a duration like 30d, 7d or 12h", s)
		}
		d += more
	}
	if d <= 0 {
		return 0, errors.New("parse window " + strconv.Quote(s) + ": not positive")
	}
	return d, nil
}

// FormatWindow writes a window back in ParseWindow's terms: "30d", "1d12h0m0s", "12h0m0s".
func FormatWindow(d time.Duration) string {
	const day = 24 * time.Hour
	if d < day {
		return d.String()
	}
	days, rest := d/day, d%day
	if rest == 0 {
		return itoa(int(days)) + "d"
	}
	return itoa(int(days)) + "d" + rest.String()
}

func itoa(n int) string     { return strconv.Itoa(n) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
