package history

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultRegressLast is how many previous drills the regression gate takes the median of when
// Regress.LastN is 0.
const DefaultRegressLast = 10

// Gates are the limits a drill must stay within; a zero field is a gate that is off.
type Gates struct {
	MaxTTR       time.Duration // --max-ttr
	MaxTTD       time.Duration // --max-ttd
	MaxBudgetUse float64       // --max-budget-use, percent of the error budget
	Regress      Regress       // --regress
}

// Regress fails a drill whose TTR is more than Percent above the median TTR of the last LastN
// previous drills of the same target and fault. It passes, saying so, until there are LastN.
type Regress struct {
	Percent float64 // 0 = off
	LastN   int     // 0 = DefaultRegressLast
}

// The names of the gates, stable for JUnit test cases.
const (
	GateMaxTTR       = "max-ttr"
	GateMaxTTD       = "max-ttd"
	GateMaxBudgetUse = "max-budget-use"
	GateRegress      = "regress"
)

// GateResult is one gate's verdict.
type GateResult struct {
	Name    string
	Passed  bool
	Message string
}

// Validate rejects negative limits.
func (g Gates) Validate() error {
	var errs []error
	if g.MaxTTR < 0 {
		errs = append(errs, fmt.Errorf("--max-ttr %s is negative", g.MaxTTR))
	}
	if g.MaxTTD < 0 {
		errs = append(errs, fmt.Errorf("--max-ttd %s is negative", g.MaxTTD))
	}
	if g.MaxBudgetUse < 0 || math.IsNaN(g.MaxBudgetUse) {
		errs = append(errs, fmt.Errorf("--max-budget-use %s is not a positive percentage", pct(g.MaxBudgetUse)))
	}
	if g.Regress.Percent < 0 || math.IsNaN(g.Regress.Percent) {
		errs = append(errs, fmt.Errorf("--regress %s is not a positive percentage", pct(g.Regress.Percent)))
	}
	if g.Regress.LastN < 0 {
		errs = append(errs, fmt.Errorf("regression over the last %d drills: not a count", g.Regress.LastN))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gates: %w", err)
	}
	return nil
}

// Evaluate checks current against each gate that is on, in the order max-ttd, max-ttr,
// max-budget-use, regress. previous is the history before current (any targets and faults;
// a record with current's run id is left out). A figure a gate needs that was not measured
// fails the gate.
func Evaluate(current Record, previous []Record, budget Budget, gates Gates) []GateResult {
	out := []GateResult{}
	if gates.MaxTTD > 0 {
		out = append(out, maxGate(GateMaxTTD, "TTD", current.TTD, gates.MaxTTD))
	}
	if gates.MaxTTR > 0 {
		out = append(out, maxGate(GateMaxTTR, "TTR", current.TTR, gates.MaxTTR))
	}
	if gates.MaxBudgetUse > 0 {
		out = append(out, budgetGate(current, budget, gates.MaxBudgetUse))
	}
	if gates.Regress.Percent > 0 {
		out = append(out, regressGate(current, previous, gates.Regress))
	}
	return out
}

// AllPassed reports whether every gate passed.
func AllPassed(results []GateResult) bool {
	for _, r := range results {
		if !r.Passed {
			return false
		}
	}
	return true
}

func maxGate(name, figure string, get func() (time.Duration, bool), max time.Duration) GateResult {
	flag := "--" + name + " " + limit(max)
	d, ok := get()
	switch {
	case !ok:
		return GateResult{name, false, figure + " not measured: " + flag + " cannot pass"}
	case d > max:
		return GateResult{name, false, figure + " " + human(d) + " exceeds " + flag}
	}
	return GateResult{name, true, figure + " " + human(d) + " within " + flag}
}

func budgetGate(current Record, b Budget, maxPercent float64) GateResult {
	flag := "--" + GateMaxBudgetUse + " " + pct(maxPercent)
	if err := b.Validate(); err != nil {
		return GateResult{GateMaxBudgetUse, false, flag + " needs an SLO and its window: " + err.Error()}
	}
	d, ok := current.Downtime()
	if !ok {
		return GateResult{GateMaxBudgetUse, false, "downtime not measured: " + flag + " cannot pass"}
	}
	used := fmt.Sprintf("downtime %s used %.2f%% of the error budget of %s", human(d), b.usePercent(d), b)
	if b.usePercent(d) > maxPercent {
		return GateResult{GateMaxBudgetUse, false, used + ", over " + flag}
	}
	return GateResult{GateMaxBudgetUse, true, used + ", within " + flag}
}

func regressGate(current Record, previous []Record, g Regress) GateResult {
	n := g.LastN
	if n == 0 {
		n = DefaultRegressLast
	}
	flag := "--" + GateRegress + " " + pct(g.Percent)
	kind := current.Target + "/" + current.Fault
	c := cohort(current, previous, n)
	if len(c) < n {
		return GateResult{GateRegress, true, fmt.Sprintf("not enough history for %s: %d of %d previous %s drills with a TTR; regression not checked",
			flag, len(c), n, kind)}
	}
	ttr, ok := current.TTR()
	if !ok {
		return GateResult{GateRegress, false, "TTR not measured: " + flag + " cannot pass"}
	}
	med := Median(TTRs(c))
	than := fmt.Sprintf("the median of the last %d %s drills (%s)", n, kind, human(med))
	var rel string
	switch change := 100 * float64(ttr-med) / float64(max(med, 1)); {
	case ttr == med:
		rel = "the same as " + than
	case med == 0:
		rel = "above " + than
	case change >= 0:
		rel = fmt.Sprintf("%.0f%% above %s", change, than)
	default:
		rel = fmt.Sprintf("%.0f%% below %s", -change, than)
	}
	msg := "TTR " + human(ttr) + " is " + rel
	if float64(ttr)*100 > float64(med)*(100+g.Percent) {
		return GateResult{GateRegress, false, msg + ", over " + flag}
	}
	return GateResult{GateRegress, true, msg + ", within " + flag}
}
