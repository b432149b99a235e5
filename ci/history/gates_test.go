package history_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/history"
)

func TestEvaluate(t *testing.T) {
	// now is the drill under test; its TTD is 850 ms, downtime TTD + TTR.
	now := func(ttrMS float64) history.Record { return drillRecord(30, 850, ttrMS) }
	noDowntime := now(1000)
	noDowntime.DowntimeMS = nil
	month := history.Budget{SLO: 99.9, Window: 30 * day} // 43.2 min
	tenSeconds := history.Budget{SLO: 99, Window: 1000 * time.Second}
	downtime := func(d time.Duration) history.Record {
		r := now(1000)
		r.DowntimeMS = history.MS(d)
		return r
	}
	five := series(1000, 1100, 1200, 1300, 1400) // median 1.2 s
	noise := series(9000, 9000, -1)
	noise[0].Target, noise[1].Fault = "aws", "kill" // other kinds, and one without a TTR
	regress := history.Gates{Regress: history.Regress{Percent: 20, LastN: 5}}
	pass := func(name, msg string) []history.GateResult {
		return []history.GateResult{{Name: name, Passed: true, Message: msg}}
	}
	fail := func(name, msg string) []history.GateResult {
		return []history.GateResult{{Name: name, Passed: false, Message: msg}}
	}

	tests := []struct {
		name     string
		current  history.Record
		previous []history.Record
		budget   history.Budget
		gates    history.Gates
		want     []history.GateResult
	}{
		{"no gates, no results", now(99999), five, month, history.Gates{}, []history.GateResult{}},

		{"a TTR above --max-ttr fails", now(3400), nil, month, history.Gates{MaxTTR: 2 * time.Second},
			fail("max-ttr", "TTR 3.4 s exceeds --max-ttr 2 s")},
		{"a TTR equal to --max-ttr passes", now(2000), nil, month, history.Gates{MaxTTR: 2 * time.Second},
			pass("max-ttr", "TTR 2.0 s within --max-ttr 2 s")},
		{"a TTR a millisecond over --max-ttr fails", now(2001), nil, month, history.Gates{MaxTTR: 2 * time.Second},
			fail("max-ttr", "TTR 2.0 s exceeds --max-ttr 2 s")},
		{"a drill that never recovered fails --max-ttr", now(-1), nil, month, history.Gates{MaxTTR: 2 * time.Second},
			fail("max-ttr", "TTR not measured: --max-ttr 2 s cannot pass")},

		{"a TTD above --max-ttd fails", now(1000), nil, month, history.Gates{MaxTTD: 500 * time.Millisecond},
			fail("max-ttd", "TTD 850 ms exceeds --max-ttd 500 ms")},
		{"a TTD under --max-ttd passes", now(1000), nil, month, history.Gates{MaxTTD: 1500 * time.Millisecond},
			pass("max-ttd", "TTD 850 ms within --max-ttd 1.5 s")},
		{"an outage never detected fails --max-ttd", drillRecord(30, -1, 1000), nil, month, history.Gates{MaxTTD: time.Second},
			fail("max-ttd", "TTD not measured: --max-ttd 1 s cannot pass")},

		{"downtime within --max-budget-use passes", downtime(7 * time.Second), nil, month, history.Gates{MaxBudgetUse: 0.5},
			pass("max-budget-use", "downtime 7.0 s used 0.27% of the error budget of 99.9% over 30d (43.2 min), within --max-budget-use 0.5%")},
		{"downtime over --max-budget-use fails", downtime(7 * time.Second), nil, month, history.Gates{MaxBudgetUse: 0.1},
			fail("max-budget-use", "downtime 7.0 s used 0.27% of the error budget of 99.9% over 30d (43.2 min), over --max-budget-use 0.1%")},
		{"exactly --max-budget-use passes", downtime(time.Second), nil, tenSeconds, history.Gates{MaxBudgetUse: 10},
			pass("max-budget-use", "downtime 1.0 s used 10.00% of the error budget of 99% over 16m40s (10.0 s), within --max-budget-use 10%")},
		{"a millisecond more fails", downtime(1001 * time.Millisecond), nil, tenSeconds, history.Gates{MaxBudgetUse: 10},
			fail("max-budget-use", "downtime 1.0 s used 10.01% of the error budget of 99% over 16m40s (10.0 s), over --max-budget-use 10%")},
		{"--max-budget-use without an SLO fails", downtime(time.Second), nil, history.Budget{}, history.Gates{MaxBudgetUse: 1},
			fail("max-budget-use", "--max-budget-use 1% needs an SLO and its window: error budget: SLO 0% is not between 0% and 100%")},
		{"downtime not measured fails --max-budget-use", noDowntime, nil, month, history.Gates{MaxBudgetUse: 1},
			fail("max-budget-use", "downtime not measured: --max-budget-use 1% cannot pass")},

		{"a TTR 25% above the median fails --regress 20%", now(1500), five, month, regress,
			fail("regress", "TTR 1.5 s is 25% above the median of the last 5 local/stop drills (1.2 s), over --regress 20%")},
		{"exactly 20% above passes --regress 20%", now(1440), five, month, regress,
			pass("regress", "TTR 1.4 s is 20% above the median of the last 5 local/stop drills (1.2 s), within --regress 20%")},
		{"a millisecond more fails --regress 20%", now(1441), five, month, regress,
			fail("regress", "TTR 1.4 s is 20% above the median of the last 5 local/stop drills (1.2 s), over --regress 20%")},
		{"a faster drill passes", now(1000), five, month, regress,
			pass("regress", "TTR 1.0 s is 17% below the median of the last 5 local/stop drills (1.2 s), within --regress 20%")},
		{"the median itself passes", now(1200), five, month, regress,
			pass("regress", "TTR 1.2 s is the same as the median of the last 5 local/stop drills (1.2 s), within --regress 20%")},
		{"with other targets, faults, unmeasured TTRs and the drill itself left out, 25% above still fails", now(1500), append(append(noise, five...), now(1500)), month, regress,
			fail("regress", "TTR 1.5 s is 25% above the median of the last 5 local/stop drills (1.2 s), over --regress 20%")},
		{"only the last N drills count", now(1500), append(series(100, 100), series(1000, 1100, 1200, 1300, 1400, 1500, 1600)[2:]...), month, regress,
			pass("regress", "TTR 1.5 s is 7% above the median of the last 5 local/stop drills (1.4 s), within --regress 20%")},
		{"too little history passes and says so", now(9000), five[:4], month, regress,
			pass("regress", "not enough history for --regress 20%: 4 of 5 previous local/stop drills with a TTR; regression not checked")},
		{"LastN 0 takes the last 10", now(9000), five, month, history.Gates{Regress: history.Regress{Percent: 20}},
			pass("regress", "not enough history for --regress 20%: 5 of 10 previous local/stop drills with a TTR; regression not checked")},
		{"a drill that never recovered fails --regress", now(-1), five, month, regress,
			fail("regress", "TTR not measured: --regress 20% cannot pass")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := history.Evaluate(tt.current, tt.previous, tt.budget, tt.gates)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got:\n%+v\nwant:\n%+v", got, tt.want)
			}
			if history.AllPassed(got) != !strings.Contains(tt.name, "fail") {
				t.Errorf("AllPassed %v disagrees with %q", history.AllPassed(got), tt.name)
			}
		})
	}
}

func TestEvaluateRunsEveryGateThatIsOnInOrder(t *testing.T) {
	gates := history.Gates{MaxTTR: time.Second, MaxTTD: time.Second, MaxBudgetUse: 1, Regress: history.Regress{Percent: 10, LastN: 3}}
	got := history.Evaluate(drillRecord(10, 500, 1500), series(1000, 1000, 1000), history.Budget{SLO: 99.9, Window: 30 * day}, gates)
	var names []string
	var passed []bool
	for _, r := range got {
		names, passed = append(names, r.Name), append(passed, r.Passed)
	}
	if want := []string{history.GateMaxTTD, history.GateMaxTTR, history.GateMaxBudgetUse, history.GateRegress}; !reflect.DeepEqual(names, want) {
		t.Errorf("gates %v, want %v", names, want)
	}
	if want := []bool{true, false, true, false}; !reflect.DeepEqual(passed, want) {
		t.Errorf("passed %v, want %v", passed, want)
	}
}

func TestGatesValidate(t *testing.T) {
	tests := []struct {
		name  string
		gates history.Gates
		want  string
	}{
		{"all off", history.Gates{}, ""},
		{"all on", history.Gates{MaxTTR: time.Second, MaxTTD: time.Second, MaxBudgetUse: 5, Regress: history.Regress{Percent: 20, LastN: 10}}, ""},
		{"a negative --max-ttr", history.Gates{MaxTTR: -time.Second}, "--max-ttr -1s is negative"},
		{"a negative --max-ttd", history.Gates{MaxTTD: -time.Second}, "--max-ttd -1s is negative"},
		{"a negative --max-budget-use", history.Gates{MaxBudgetUse: -1}, "--max-budget-use -1% is not a positive percentage"},
		{"a negative --regress", history.Gates{Regress: history.Regress{Percent: -5}}, "--regress -5% is not a positive percentage"},
		{"a negative count of drills", history.Gates{Regress: history.Regress{Percent: 5, LastN: -1}}, "last -1 drills"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.gates.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
