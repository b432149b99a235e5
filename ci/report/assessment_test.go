package report_test

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/ci/report"
)

// A passed drill that fails a gate does not pass: report.json, summary.md and junit.xml all say
// which gate and why, and the budget and trend are shown.
func TestAFailedGateFailsTheReport(t *testing.T) {
	res := passedResult()
	a := report.Assessment{
		Budget: "7.0 s of 43.2 min, 0.27% (SLO 99.9% over 30d)",
		Trend:  "TTR 1.2 s: 8% faster than the median of the last 10 drills",
		Gates: []report.Gate{
			{Name: "max-ttd", Passed: true, Message: "TTD 95 ms within --max-ttd 1 s"},
			{Name: "max-ttr", Passed: false, Message: "TTR 1.9 s exceeds --max-ttr 1 s"},
		},
	}
	dir := t.TempDir()
	if _, err := report.Write(dir, res, report.Options{Assessment: a}); err != nil {
		t.Fatal(err)
	}
	var r report.Report
	data, _ := os.ReadFile(filepath.Join(dir, report.JSONFile))
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Passed || len(r.Gates) != 2 || r.ErrorBudget != a.Budget || r.Trend != a.Trend {
		t.Errorf("report.json: passed %v, gates %+v, budget %q, trend %q", r.Passed, r.Gates, r.ErrorBudget, r.Trend)
	}
	md, _ := os.ReadFile(filepath.Join(dir, report.SummaryFile))
	for _, want := range []string{"❌ Deploy drill", "7.0 s of 43.2 min", "8% faster", "| ❌ | max-ttr | TTR 1.9 s exceeds --max-ttr 1 s |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
	var junit struct {
		Suites []struct {
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Type string `xml:"type,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	data, _ = os.ReadFile(filepath.Join(dir, report.JUnitFile))
	if err := xml.Unmarshal(data, &junit); err != nil {
		t.Fatal(err)
	}
	gates := map[string]bool{}
	for _, c := range junit.Suites[0].Cases {
		if c.Name == "max-ttd" || c.Name == "max-ttr" {
			gates[c.Name] = c.Failure == nil
		}
	}
	if len(gates) != 2 || !gates["max-ttd"] || gates["max-ttr"] || junit.Suites[0].Failures != 1 {
		t.Errorf("junit gate cases %v, failures %d; want max-ttd passed, max-ttr failed", gates, junit.Suites[0].Failures)
	}
}
