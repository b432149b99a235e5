package history

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// human is a duration for people: "850 ms", "1.2 s", "43.2 min", "7.2 h", "30.0 d".
func human(d time.Duration) string {
	switch a := d.Abs(); {
	case a < time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	case a < 100*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case a < 100*time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	case a < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%.1f d", d.Hours()/24)
}

// limit is a threshold as people typed it: "2 s", not "2.0 s".
func limit(d time.Duration) string {
	s := human(d)
	num, unit, _ := strings.Cut(s, " ")
	return strings.TrimSuffix(num, ".0") + " " + unit
}

// optHuman is a nullable figure, or "-".
func optHuman(d time.Duration, ok bool) string {
	if !ok {
		return "-"
	}
	return human(d)
}

// pct is a percentage as typed: "20%", "0.5%".
func pct(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) + "%" }
