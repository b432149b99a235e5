package report_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/report"
)

// fleetSVG is the part of a fleet's timeline a reader depends on: every label, with what its
// tspans say, and every shape with its hover text.
type fleetSVG struct {
	Height string `xml:"height,attr"`
	Texts  []struct {
		Text  string `xml:",chardata"`
		Spans []struct {
			Fill string `xml:"fill,attr"`
			Text string `xml:",chardata"`
		} `xml:"tspan"`
	} `xml:"text"`
	Rects []struct {
		X      string `xml:"x,attr"`
		Width  string `xml:"width,attr"`
		Y      string `xml:"y,attr"`
		Height string `xml:"height,attr"`
		Fill   string `xml:"fill,attr"`
		Title  string `xml:"title"`
	} `xml:"rect"`
}

func TestSVGShowsEveryHostAndTheLoadBalancer(t *testing.T) {
	res := fleetResult()
	data := report.SVG(res, drill.ComputeFigures(res))
	var doc fleetSVG
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("timeline.svg does not parse: %v", err)
	}
	labels := map[string]string{} // row label → its tspan's colour
	var texts []string
	for _, tx := range doc.Texts {
		label := strings.TrimSpace(tx.Text)
		texts = append(texts, label)
		labels[label] = ""
		for _, s := range tx.Spans {
			if s.Text == "(faulted)" {
				labels[label] = s.Fill
			}
		}
	}
	for host, faulted := range map[string]bool{hostA: true, hostB: false, hostC: false} {
		fill, ok := labels[host]
		if !ok || faulted != (fill == "#cf222e") {
			t.Errorf("row of %s: labelled %v, (faulted) in %q; want faulted %v, in red", host, ok, fill, faulted)
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{"load balancer", "3/3 in rotation", "2/3", "in rotation", "initial", "unhealthy", "draining", "not registered", "poll failed", "healthy probe"} {
		if !strings.Contains(all, want) {
			t.Errorf("no text %q in the timeline", want)
		}
	}
	if strings.Contains(all, "unused / unavailable") {
		t.Error("the legend names a state no host was in")
	}

	titles := map[string]string{} // hover text → fill
	var green, red int
	height, _ := strconv.ParseFloat(doc.Height, 64)
	for _, r := range doc.Rects {
		titles[r.Title] = r.Fill
		switch r.Fill {
		case "#2da44e":
			green++
		case "#cf222e":
			red++
		}
		x, _ := strconv.ParseFloat(r.X, 64)
		w, _ := strconv.ParseFloat(r.Width, 64)
		y, _ := strconv.ParseFloat(r.Y, 64)
		h, _ := strconv.ParseFloat(r.Height, 64)
		if r.Title != "" && (x < 200 || x+w > 1000.05 || y+h > height) {
			t.Errorf("rect %q at x %s width %s, y %s height %s: off the plot (the labels need x ≥ 200)", r.Title, r.X, r.Width, r.Y, r.Height)
		}
	}
	var ok, failed int
	for _, s := range res.Samples {
		if s.OK() {
			ok++
		} else {
			failed++
		}
	}
	if green != ok+1 || red != failed+1 { // the fleet's colours are not the probes'
		t.Errorf("%d green and %d red rects, want one per probe and a legend swatch: %d and %d", green, red, ok+1, failed+1)
	}
	for title, fill := range map[string]string{
		hostA + " +19.5 s to +21.5 s: unhealthy (Target.FailedHealthChecks)":      "#ff8182",
		hostA + " +21.5 s to +22.5 s: draining (Target.DeregistrationInProgress)": "#eac54f",
		hostA + " +22.5 s to +23.5 s: not registered":                             "#d0d7de",
		hostB + " +2.50 s to +4.50 s: initial (Elb.RegistrationInProgress)":       "#80ccff",
		hostB + " +29.5 s to +38.5 s: healthy":                                    "#4ac26b",
		hostC + " +38.5 s to +39.5 s: poll failed: describe target health: operation error Elastic Load Balancing v2: DescribeTargetHealth, ThrottlingException: Rate exceeded": "#57606a",
		"load balancer +19.5 s to +25.5 s: 2/3 in rotation: " + hostB + ", " + hostC:                                                                                            "#4ac26b",
	} {
		if got, ok := titles[title]; !ok || got != fill {
			t.Errorf("no %s stretch %q (found: %v, %q)", fill, title, ok, got)
		}
	}
	if h, err := strconv.Atoi(doc.Height); err != nil || h <= 256+3*16 {
		t.Errorf("height %s: want room below the probes for three hosts and the load balancer", doc.Height)
	}
}

func TestJSONCarriesTheFleetAndEveryPoll(t *testing.T) {
	res := fleetResult()
	data, err := report.JSON(res, drill.ComputeFigures(res), report.Assessment{})
	if err != nil {
		t.Fatal(err)
	}
	var doc report.Report
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	fl, ff := doc.Fleet, doc.Figures.Fleet
	if fl == nil || ff == nil {
		t.Fatalf("fleet %v, figures.fleet %v: want both", fl, ff)
	}
	if fl.Balancer != "deploydrill-r7f3c-alb" || !fl.Rolling || len(fl.Hosts) != 3 || fl.Hosts[0] != hostA || len(fl.Faulty) != 1 {
		t.Errorf("fleet %+v", fl)
	}
	if len(fl.Polls) != len(res.Fleet.Samples) {
		t.Fatalf("%d polls, want all %d", len(fl.Polls), len(res.Fleet.Samples))
	}
	if p := fl.Polls[19]; p.OffsetMS != 19500 || p.Phase != "outage" || p.Healthy != 2 || len(p.States) != 3 ||
		p.States[2] != (report.HostState{Host: hostA, State: "unhealthy", Reason: "Target.FailedHealthChecks"}) {
		t.Errorf("poll 19: %+v", p)
	}
	if p := fl.Polls[38]; p.Error == "" || len(p.States) != 0 {
		t.Errorf("poll 38: %+v, want the failed poll's error and no states", p)
	}
	if ff.Hosts != 3 || ff.FaultyHosts != 1 || ptr(ff.OutOfRotationMS) != 1897 || ff.MinCapacity == nil || *ff.MinCapacity != 2 {
		t.Errorf("figures.fleet: hosts %d, faulty %d, out of rotation %v ms, min capacity %v; want 3, 1, 1897 (fault 17.603 s, unhealthy 19.5 s), 2",
			ff.Hosts, ff.FaultyHosts, ff.OutOfRotationMS, ff.MinCapacity)
	}
	if o, r := ff.OutageUsers, ff.RollbackUsers; o == nil || r == nil || *o != (report.UserWindow{Requests: 15, Failed: 4, ErrorRate: 0.266667}) || r.Failed != 0 || r.Requests != 70 {
		t.Errorf("outage users %+v, rollback users %+v", o, r)
	}
	if len(ff.PerHost) != 3 {
		t.Fatalf("per host %+v", ff.PerHost)
	}
	if a, b := ff.PerHost[0], ff.PerHost[1]; !a.Faulty || ptr(a.OutOfRotationMS) != 1897 || ptr(a.BackInRotationMS) != 5499 ||
		b.Faulty || b.OutOfRotationMS != nil || ptr(b.BackInRotationMS) != 9499 || b.InRotation != 0.916667 {
		t.Errorf("per host %+v, %+v", a, b)
	}

	// One poll per line, like the samples: the file stays greppable.
	lines := bytes.Split(data, []byte("\n"))
	var pollLines int
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte(`      {"at":`)) {
			pollLines++
		}
	}
	if pollLines != len(res.Fleet.Samples) {
		t.Errorf("%d lines hold a poll, want one per poll (%d)", pollLines, len(res.Fleet.Samples))
	}
}

func TestJSONLeavesWhatWasNotMeasuredNull(t *testing.T) {
	res := fleetResult()
	res.Config.LoadRPS = 0
	res.Requests = nil
	f := drill.ComputeFigures(res)
	f.Fleet.MinCapacity = -1
	data, err := report.JSON(res, f, report.Assessment{})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Figures struct {
			Fleet map[string]json.RawMessage `json:"fleet"`
		} `json:"figures"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"min_capacity", "outage_users", "rollback_users"} {
		if got := string(doc.Figures.Fleet[key]); got != "null" {
			t.Errorf("figures.fleet.%s = %s, want null", key, got)
		}
	}
}

func TestMarkdownHasAFleetSection(t *testing.T) {
	for _, tt := range []struct {
		name    string
		tweak   func(*drill.Result, *drill.Figures)
		want    []string
		notWant []string
	}{
		{
			name: "a contained fault and a clean rolling rollback",
			want: []string{
				"**Fleet:** 3 hosts behind `deploydrill-r7f3c-alb`, rolling deploys (one host at a time: deregister, drain, deploy, healthy). Faulted: `" + hostA + "`.",
				"| Load balancer stopped routing to the faulted host (fault → out of rotation) | 1.90 s |",
				"| Capacity during the outage (fewest hosts in rotation) | 2 of 3 |",
				"| Users' error rate during the outage | 26.67% (4 of 15 requests failed) |",
				"| Users' failed requests during the rollback (goal 0) | ✅ 0 of 70 |",
				"| `" + hostA + "` | yes | 1.90 s | 5.50 s | 83.3% |",
				"| `" + hostB + "` | no | stayed in | 9.50 s | 91.7% |",
			},
		},
		{
			name: "users' requests failed during the rollback",
			tweak: func(_ *drill.Result, f *drill.Figures) {
				f.Fleet.RollbackFailed = 3
			},
			want: []string{"| Users' failed requests during the rollback (goal 0) | ❌ 3 of 70 |"},
		},
		{
			name: "the fault spread to a host it did not hit, and the faulty one stayed in rotation",
			tweak: func(_ *drill.Result, f *drill.Figures) {
				f.Fleet.PerHost[0].OutOfRotation = drill.NullDuration{}
				f.Fleet.PerHost[1].OutOfRotation = drill.NullDuration{D: ms(2500), Valid: true}
				f.Fleet.OutOfRotation = drill.NullDuration{}
			},
			want: []string{
				"| Load balancer stopped routing to the faulted host (fault → out of rotation) | not measured |",
				"| `" + hostA + "` | yes | ❌ never |",
				"| `" + hostB + "` | no | ❌ 2.50 s |",
			},
		},
		{
			name: "all at once, two faulted, no users' load",
			tweak: func(r *drill.Result, f *drill.Figures) {
				r.Fleet.Rolling = false
				r.Fleet.Faulty = []string{hostA, hostB}
				f.Fleet.FaultyHosts = 2
				f.Users = nil
			},
			want: []string{
				"all-at-once deploys (every host at once). Faulted: `" + hostA + "`, `" + hostB + "`.",
				"| Load balancer stopped routing to the 2 faulted hosts (fault → the last out of rotation) |",
				"| Users' error rate during the outage | not measured (no --load) |",
				"| Users' failed requests during the rollback (goal 0) | not measured (no --load) |",
			},
			notWant: []string{"| Users' requests (--load"},
		},
		{
			name: "the drill stopped before the fault",
			tweak: func(r *drill.Result, f *drill.Figures) {
				r.FaultAt, r.RollbackAt = time.Time{}, time.Time{}
				*f = drill.ComputeFigures(r)
			},
			want: []string{
				"| Load balancer stopped routing to the faulted host (fault → out of rotation) | not measured |",
				"| `" + hostA + "` | yes | not measured | not measured |",
				"| `" + hostB + "` | no | not measured | not measured |",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := fleetResult()
			f := drill.ComputeFigures(res)
			if tt.tweak != nil {
				tt.tweak(res, &f)
			}
			md := string(report.Markdown(res, f, report.Assessment{}))
			for _, want := range tt.want {
				if !strings.Contains(md, want) {
					t.Errorf("summary.md lacks %q:\n%s", want, md)
				}
			}
			for _, not := range tt.notWant {
				if strings.Contains(md, not) {
					t.Errorf("summary.md has %q", not)
				}
			}
		})
	}
}

func ptr(f *float64) float64 {
	if f == nil {
		return -1
	}
	return *f
}

func TestJUnitListsThePollsThatBrokeAFleetsOutage(t *testing.T) {
	allIn := func(at string) string {
		return "\n+" + at + " 3/3 in rotation: " + hostA + " healthy (faulted), " + hostB + " healthy, " + hostC + " healthy"
	}
	for _, tt := range []struct {
		name       string
		tweak      func(*drill.Result)
		want, sout string
	}{
		{
			name: "the load balancer never noticed the faulty host: every poll of the outage",
			tweak: func(r *drill.Result) {
				for i := range r.Fleet.Samples {
					for j, h := range r.Fleet.Samples[i].Hosts {
						if h.Host == hostA && h.State == "unhealthy" {
							r.Fleet.Samples[i].Hosts[j] = drill.HostState{Host: hostA, State: "healthy"}
						}
					}
				}
			},
			want: allIn("18.5 s") + allIn("19.5 s"),
			sout: "fleet: 3 hosts behind deploydrill-r7f3c-alb, faulted " + hostA + "; fault to out of rotation not measured, min capacity 3 of 3; " +
				"users' requests failed: 4 of 15 in the outage, 0 of 70 in the rollback (goal 0)\n",
		},
		{
			name: "it noticed late: the polls before it did, not the one after",
			want: allIn("18.5 s"),
			sout: "fleet: 3 hosts behind deploydrill-r7f3c-alb, faulted " + hostA + "; fault to out of rotation 1.90 s, min capacity 2 of 3; " +
				"users' requests failed: 4 of 15 in the outage, 0 of 70 in the rollback (goal 0)\n",
		},
		{
			name: "a host it did not hit left the rotation",
			tweak: func(r *drill.Result) {
				r.Fleet.Samples[19].Hosts[0].State, r.Fleet.Samples[19].Hosts[0].Reason = "unhealthy", "Target.Timeout"
			},
			want: allIn("18.5 s") + "\n+19.5 s 1/3 in rotation: " + hostA + " unhealthy (faulted), " + hostB + " unhealthy, " + hostC + " healthy",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := fleetResult()
			if tt.tweak != nil {
				tt.tweak(res)
			}
			e := &res.Expectations[2]
			e.Status, e.Message = drill.Failed, "the load balancer did not contain the fault"
			data, err := report.JUnit(res, drill.ComputeFigures(res), report.Assessment{})
			if err != nil {
				t.Fatal(err)
			}
			var doc junitDoc
			if err := xml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("junit.xml does not parse: %v", err)
			}
			outage := doc.Suites[0].Cases[2].Failure
			if outage == nil {
				t.Fatal("the outage case did not fail")
			}
			if want := e.Message + tt.want; outage.Text != want {
				t.Errorf("outage failure:\n%s\nwant the polls that broke it, not the probes that answered through the load balancer:\n%s", outage.Text, want)
			}
			if out := doc.Suites[0].SystemOut; !strings.HasSuffix(out, tt.sout) {
				t.Errorf("system-out %q, want it to end %q", out, tt.sout)
			}
		})
	}
}

// A single host's outputs have none of a fleet's additions (the goldens hold them byte for byte).
func TestASingleHostHasNoFleet(t *testing.T) {
	res := passedResult()
	f := drill.ComputeFigures(res)
	if res.Fleet != nil || f.Fleet != nil {
		t.Fatal("the single-host fixture is a fleet")
	}
	data, err := report.JSON(res, f, report.Assessment{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["fleet"]; ok || bytes.Contains(doc["figures"], []byte(`"fleet"`)) {
		t.Error("report.json has a fleet")
	}
	if md := report.Markdown(res, f, report.Assessment{}); bytes.Contains(md, []byte("Fleet")) {
		t.Error("summary.md has a fleet section")
	}
	if svg := report.SVG(res, f); !bytes.Contains(svg, []byte(`width="1000" height="256"`)) || bytes.Contains(svg, []byte("load balancer")) {
		t.Error("timeline.svg has a fleet's rows")
	}
}
