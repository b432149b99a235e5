package report

import "github.com/deploydrill/deploydrill/ci/drill"

// Assessment is what the run's history and SLO say about the drill: the share of the error
// budget its downtime would burn, the gates it was held to, and how its recovery compares with
// earlier drills. The zero Assessment adds nothing to the report.
type Assessment struct {
	Budget string // e.g. "7.0 s of 43.2 min, 0.27% (SLO 99.9% over 30d)"; "" without --slo
	Gates  []Gate
	Trend  string // e.g. "TTR 1.2 s: 8% faster than the median of the last 10 drills"
}

// Gate is one regression or budget gate and its verdict.
type Gate struct {
	Name    string `json:"name"` // stable: max-ttr, max-ttd, max-budget-use, regress
	Passed  bool   `json:"passed"`
	Message string `json:"message"`
}

// Passed reports whether every gate passed.
func (a Assessment) Passed() bool {
	for _, g := range a.Gates {
		if !g.Passed {
			return false
		}
	}
	return true
}

// passed is the run's verdict: the drill's, and every gate's.
func passed(res *drill.Result, a Assessment) bool { return res.Passed() && a.Passed() }
