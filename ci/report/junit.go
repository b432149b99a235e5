package report

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// JUnit renders junit.xml: one test case per phase expectation, named stably so CI can track
// them across runs. A failed expectation is a <failure>, one the drill never reached <skipped>.
func JUnit(res *drill.Result, f drill.Figures, a Assessment) ([]byte, error) {
	suite := junitSuite{
		Name:      "deploydrill." + res.Target,
		Timestamp: res.Started.UTC().Format(time.RFC3339),
		Time:      seconds(res.Ended.Sub(res.Started)),
		Properties: []junitProperty{
			{"target", res.Target}, {"v", res.V.Ref}, {"k", res.K.Ref},
			{"rollback", fmt.Sprintf("%s: %s", res.Rollback.Kind, res.Rollback.Reason)},
			{"time_to_detect", optHuman(f.TimeToDetect)}, {"time_to_recover", optHuman(f.TimeToRecover)},
			{"observed_downtime", optHuman(f.ObservedDowntime)},
		},
		SystemOut: &junitText{summaryText(res, f)},
	}
	for _, e := range res.Expectations {
		c := junitCase{Name: e.Name, Classname: "deploydrill." + string(e.Phase), Time: "0"}
		if m, ok := res.Mark(e.Phase); ok {
			c.Time = seconds(m.Duration())
		}
		switch e.Status {
		case drill.Failed:
			c.Failure = &junitFailure{Message: oneLine(e.Message), Type: "expectation", Text: failureText(res, e)}
			suite.Failures++
		case drill.NotRun:
			why := "not reached"
			if res.Error != "" {
				why += ": " + oneLine(res.Error)
			}
			c.Skipped = &junitSkipped{Message: why}
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, c)
	}
	for _, g := range a.Gates { // one case per gate, so CI tracks each
		c := junitCase{Name: g.Name, Classname: "deploydrill.gate", Time: "0"}
		if !g.Passed {
			c.Failure = &junitFailure{Message: oneLine(g.Message), Type: "gate", Text: g.Message}
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
	}
	if a.Budget != "" {
		suite.Properties = append(suite.Properties, junitProperty{"error_budget", a.Budget})
	}
	suite.Tests = len(suite.Cases)
	doc := junitSuites{Name: "deploydrill", Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped, Time: suite.Time, Suites: []junitSuite{suite}}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode junit: %w", err)
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  *junitText      `xml:"system-out"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// failureText lists the phase's failed probes (up to ten) under the message; a fleet's outage,
// the load balancer's polls that broke it.
func failureText(res *drill.Result, e drill.Expectation) string {
	var b strings.Builder
	b.WriteString(e.Message)
	if res.Fleet != nil && e.Phase == drill.PhaseOutage {
		strayPolls(&b, res)
		return b.String()
	}
	var shown int
	for _, s := range res.Samples {
		broke := !s.OK() // what breaks an expectation: failures, or in the outage any answer
		if e.Phase == drill.PhaseOutage {
			broke = s.Outcome == probe.OK || s.Outcome == probe.WrongVersion
		}
		if s.Phase != e.Phase || !broke {
			continue
		}
		if shown++; shown > 10 {
			b.WriteString("\n...")
			break
		}
		fmt.Fprintf(&b, "\n+%s %s", human(s.At.Sub(res.Started)), s.Outcome)
		if s.Version != "" {
			fmt.Fprintf(&b, " version %s", s.Version)
		}
		if s.Err != "" {
			fmt.Fprintf(&b, ": %s", oneLine(s.Err))
		}
	}
	return b.String()
}

// strayPolls lists (up to ten) the polls after the fault that broke a fleet's outage: one that
// failed, or found a faulty host still in rotation or another host out of it.
func strayPolls(b *strings.Builder, res *drill.Result) {
	fl := res.Fleet
	var shown int
	for _, s := range fl.Samples {
		if res.FaultAt.IsZero() || s.At.Before(res.RotationFrom()) || s.Phase != drill.PhaseStop && s.Phase != drill.PhaseOutage {
			continue
		}
		broke := s.Err != ""
		for _, h := range fl.Hosts {
			broke = broke || s.State(h).InRotation() == fl.IsFaulty(h)
		}
		if !broke {
			continue
		}
		if shown++; shown > 10 {
			b.WriteString("\n...")
			break
		}
		fmt.Fprintf(b, "\n+%s ", human(s.At.Sub(res.Started)))
		if s.Err != "" {
			fmt.Fprintf(b, "poll failed: %s", oneLine(s.Err))
			continue
		}
		states := make([]string, len(fl.Hosts))
		for i, h := range fl.Hosts {
			st := s.State(h)
			states[i] = h + " " + cmp.Or(st.State, "not registered")
			if fl.IsFaulty(h) {
				states[i] += " (faulted)"
			}
		}
		fmt.Fprintf(b, "%d/%d in rotation: %s", s.Healthy(), len(fl.Hosts), strings.Join(states, ", "))
	}
}

// summaryText is the figures as plain lines for <system-out>.
func summaryText(res *drill.Result, f drill.Figures) string {
	var b strings.Builder
	fmt.Fprintf(&b, "deploy drill %s on %s: V %s, K %s\n", verdict(res), res.Target, res.V.Tag, res.K.Tag)
	fmt.Fprintf(&b, "time to detect %s, time to recover %s, observed downtime %s\n",
		optHuman(f.TimeToDetect), optHuman(f.TimeToRecover), optHuman(f.ObservedDowntime))
	fmt.Fprintf(&b, "probe latency p50 %s p95 %s p99 %s over %d healthy probes\n",
		humanMS(f.Latency.P50), humanMS(f.Latency.P95), humanMS(f.Latency.P99), f.Latency.Count)
	for _, a := range f.Availability {
		fmt.Fprintf(&b, "%s: %d/%d healthy (%s)\n", a.Phase, a.Healthy, a.Probes, percent(a))
	}
	if fl, ff := res.Fleet, f.Fleet; fl != nil && ff != nil {
		fmt.Fprintf(&b, "fleet: %d hosts behind %s, faulted %s; fault to out of rotation %s, min capacity %s",
			ff.Hosts, fl.Balancer, strings.Join(fl.Faulty, ", "), optHuman(ff.OutOfRotation), capacity(ff, ff.MinCapacity))
		if f.Users != nil {
			fmt.Fprintf(&b, "; users' requests failed: %d of %d in the outage, %d of %d in the rollback (goal 0)",
				ff.OutageFailed, ff.OutageRequests, ff.RollbackFailed, ff.RollbackRequests)
		}
		b.WriteString("\n")
	}
	return b.String()
}
