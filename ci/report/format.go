package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

// human is a duration for people: "998 ms", "2.00 s", "11.0 s", "2m05s".
func human(d time.Duration) string {
	switch a := d.Abs(); {
	case a < time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	case a < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case a < 100*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// humanMS is a latency: fractions of a millisecond matter on loopback.
func humanMS(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return human(d)
}

func optHuman(d drill.NullDuration) string {
	if !d.Valid {
		return "not measured"
	}
	return human(d.D)
}

// capacity is a fleet's fewest hosts in rotation (ff.MinCapacity, ff.RollbackMinCapacity): "2 of 3".
func capacity(ff *drill.FleetFigures, fewest int) string {
	if fewest < 0 {
		return "not measured"
	}
	return fmt.Sprintf("%d of %d", fewest, ff.Hosts)
}

func percent(a drill.Availability) string {
	if a.Probes == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*a.Ratio())
}

// verdict is the one-word outcome of the drill.
func verdict(res *drill.Result) string {
	if res.Passed() {
		return "PASSED"
	}
	return "FAILED"
}

// versionLabel names a version as V, K or itself.
func versionLabel(res *drill.Result, version string) string {
	switch {
	case version == res.V.Version && version == res.K.Version:
		return "V=K " + version
	case version == res.V.Version:
		return "V " + version
	case version == res.K.Version:
		return "K " + version
	}
	return version
}

// oneLine keeps a message on one line for tables and attributes.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
