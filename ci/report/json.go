package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

// Schema identifies the report.json format. A change that removes or renames a field gets a
// new version; new fields may appear within a version.
const Schema = "deploydrill.report/v1"

// Report is report.json. Times are RFC 3339 in UTC; durations are milliseconds (fractions to
// the microsecond); a figure that was not measured is null. SCHEMA.md documents every field.
//
//	{
//	  "schema": "deploydrill.report/v1",
//	  "passed": false,                  // every expectation passed, no error, clean teardown
//	  "target": "local",
//	  "started_at": "...", "ended_at": "...", "duration_ms": 34003,
//	  "config": {...},                  // windows, probe interval/timeout, watchdog, rollback_to
//	  "v": {"ref","tag","version","digest"}, "k": {...},
//	  "rollback": {"kind","reason","trigger","started_at"},
//	  "stop_at": "...", "v_verified": true,
//	  "expectations": [{"phase","name","status","message"}],
//	  "phases": [{"phase","start","end","duration_ms"}],
//	  "figures": {"time_to_detect_ms","time_to_recover_ms","observed_downtime_ms",
//	              "probes","failed_probes","availability":[...],"latency_ms":{...}},
//	  "samples": [{"at","offset_ms","phase","want","outcome","latency_ms","version","status","error"}],
//	  "fleet": {"balancer","rolling","hosts":[],"faulty":[],     // a fleet only; figures.fleet too
//	            "polls": [{"at","offset_ms","phase","healthy","states":[{"host","state","reason"}],"error"}]},
//	  "warnings": [], "error": "", "teardown_error": "",
//	  "teardown": {"steps":[{"name","took_ms","error"}],"retention","left":[],"sweep"},
//	  "error_budget": "", "gates": [{"name","passed","message"}], "trend": ""
//	}
type Report struct {
	Schema        string        `json:"schema"`
	Passed        bool          `json:"passed"`
	Target        string        `json:"target"`
	StartedAt     time.Time     `json:"started_at"`
	EndedAt       time.Time     `json:"ended_at"`
	DurationMS    float64       `json:"duration_ms"`
	Config        Config        `json:"config"`
	V             Image         `json:"v"`
	K             *Image        `json:"k"`
	Rollback      Rollback      `json:"rollback"`
	StopAt        *time.Time    `json:"stop_at"`
	FaultAt       *time.Time    `json:"fault_at"`
	VVerified     bool          `json:"v_verified"`
	Expectations  []Expectation `json:"expectations"`
	Phases        []Phase       `json:"phases"`
	Figures       Figures       `json:"figures"`
	Samples       []Sample      `json:"samples"`
	Fleet         *Fleet        `json:"fleet,omitempty"` // absent for a single host
	Warnings      []string      `json:"warnings"`
	Error         string        `json:"error"`
	TeardownError string        `json:"teardown_error"`
	Teardown      Teardown      `json:"teardown"`
	ErrorBudget   string        `json:"error_budget"`
	Gates         []Gate        `json:"gates"`
	Trend         string        `json:"trend"`
}

// Teardown is what the run's teardown did, and what may be left when it failed.
type Teardown struct {
	Steps     []Step   `json:"steps"`
	Retention string   `json:"retention"`
	Left      []string `json:"left"`  // what may remain, in deletion order
	Sweep     string   `json:"sweep"` // the command that removes it
}

// Step is one step's outcome.
type Step struct {
	Name   string  `json:"name"`
	TookMS float64 `json:"took_ms"`
	Error  string  `json:"error"`
}

// Config is the drill's normalized configuration.
type Config struct {
	LiveWindowMS       float64 `json:"live_window_ms"`
	OutageWindowMS     float64 `json:"outage_window_ms"`
	RecoveryWindowMS   float64 `json:"recovery_window_ms"`
	ProbeIntervalMS    float64 `json:"probe_interval_ms"`
	ProbeTimeoutMS     float64 `json:"probe_timeout_ms"`
	ReadyTimeoutMS     float64 `json:"ready_timeout_ms"`
	AutoRollback       bool    `json:"auto_rollback"`
	FailuresToRollback int     `json:"failures_to_rollback"`
	FailureWindow      int     `json:"failure_window"`
	FailureRatio       float64 `json:"failure_ratio"`
	LatencySLOMS       float64 `json:"latency_slo_ms"`
	RollbackTo         string  `json:"rollback_to"`
	Fault              Fault   `json:"fault"`
}

// Fault is what started the outage, with its parameters.
type Fault struct {
	Kind     string  `json:"kind"`
	DelayMS  float64 `json:"delay_ms"`  // slow
	UptimeMS float64 `json:"uptime_ms"` // crashloop
	Broken   *Image  `json:"broken"`    // bad-deploy: the broken build B
}

// Image is one deployable version.
type Image struct {
	Ref     string `json:"ref"`
	Tag     string `json:"tag"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

// Rollback says how K was chosen and what started the rollback.
type Rollback struct {
	Kind      string     `json:"kind"` // explicit | verified | recreate; "" when not chosen
	Reason    string     `json:"reason"`
	Trigger   string     `json:"trigger"`    // the outage window elapsing, or the watchdog
	StartedAt *time.Time `json:"started_at"` // Deploy(K) called; null if not reached
}

// Expectation is one phase's verdict.
type Expectation struct {
	Phase   string `json:"phase"`
	Name    string `json:"name"`
	Status  string `json:"status"` // passed | failed | not_run
	Message string `json:"message"`
}

// Phase is when one phase ran.
type Phase struct {
	Phase      string    `json:"phase"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	DurationMS float64   `json:"duration_ms"`
	Steps      []Step    `json:"steps,omitempty"` // where a deploy's or the stop's time went
}

// Figures are the drill's measurements.
type Figures struct {
	TimeToDetectMS     *float64       `json:"time_to_detect_ms"`
	TimeToRecoverMS    *float64       `json:"time_to_recover_ms"`
	ObservedDowntimeMS *float64       `json:"observed_downtime_ms"`
	FaultToHealthyMS   *float64       `json:"fault_to_healthy_ms"`
	Probes             int            `json:"probes"`
	FailedProbes       int            `json:"failed_probes"`
	Availability       []Availability `json:"availability"`
	LatencyMS          Latency        `json:"latency_ms"`
	Users              *Users         `json:"users"`           // null without --load
	Fleet              *FleetFigures  `json:"fleet,omitempty"` // absent for a single host
}

// Users is what the users' load saw: its requests, failures and latency.
type Users struct {
	Requests  int            `json:"requests"`
	Failed    int            `json:"failed"`
	Skipped   int            `json:"skipped"`
	ErrorRate float64        `json:"error_rate"`
	ByPhase   []Availability `json:"by_phase"`
	LatencyMS Latency        `json:"latency_ms"`
}

// Fleet is a fleet drill's hosts and load balancer, and every poll of the load balancer's view.
type Fleet struct {
	Balancer string   `json:"balancer"`
	Rolling  bool     `json:"rolling"`
	Hosts    []string `json:"hosts"` // rollout order, the faulty first
	Faulty   []string `json:"faulty"`
	Polls    []Poll   `json:"polls"`
}

// Poll is one poll of the load balancer's view: every registered host's state.
type Poll struct {
	At       time.Time   `json:"at"`
	OffsetMS float64     `json:"offset_ms"` // from started_at
	Phase    string      `json:"phase"`
	Healthy  int         `json:"healthy"` // hosts in rotation
	States   []HostState `json:"states"`  // registered hosts, sorted by host
	Error    string      `json:"error"`   // the poll failed: states is empty
}

// HostState is one host as the load balancer saw it.
type HostState struct {
	Host   string `json:"host"`
	State  string `json:"state"` // healthy | initial | unhealthy | draining | unused | unavailable
	Reason string `json:"reason"`
}

// FleetFigures are a fleet drill's measurements: the load balancer's and its users'.
type FleetFigures struct {
	Hosts               int           `json:"hosts"`
	FaultyHosts         int           `json:"faulty_hosts"`
	OutOfRotationMS     *float64      `json:"out_of_rotation_ms"`
	MinCapacity         *int          `json:"min_capacity"`
	RollbackMinCapacity *int          `json:"rollback_min_capacity"`
	OutageUsers         *UserWindow   `json:"outage_users"`   // null without --load
	RollbackUsers       *UserWindow   `json:"rollback_users"` // null without --load
	PerHost             []HostFigures `json:"per_host"`
}

// UserWindow is what users' requests saw in one stretch of the drill.
type UserWindow struct {
	Requests  int     `json:"requests"`
	Failed    int     `json:"failed"`
	ErrorRate float64 `json:"error_rate"`
}

// HostFigures are one host's.
type HostFigures struct {
	Host             string   `json:"host"`
	Faulty           bool     `json:"faulty"`
	OutOfRotationMS  *float64 `json:"out_of_rotation_ms"`
	BackInRotationMS *float64 `json:"back_in_rotation_ms"`
	InRotation       float64  `json:"in_rotation"` // share of polls, 0 to 1
}

// Availability is the share of healthy probes in one phase.
type Availability struct {
	Phase    string         `json:"phase"`
	Probes   int            `json:"probes"`
	Healthy  int            `json:"healthy"`
	Ratio    float64        `json:"ratio"`
	Outcomes map[string]int `json:"outcomes"` // the mix, e.g. {"ok": 3, "refused": 7}
}

// Latency summarises healthy probes' latencies.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Sample is one probe.
type Sample struct {
	At        time.Time `json:"at"`
	OffsetMS  float64   `json:"offset_ms"` // from started_at
	Phase     string    `json:"phase"`
	Want      string    `json:"want"`
	Outcome   string    `json:"outcome"` // ok | http_error | refused | timeout | wrong_version | bad_body
	LatencyMS float64   `json:"latency_ms"`
	Version   string    `json:"version"`
	Status    int       `json:"status"`
	Error     string    `json:"error"`
}

// New converts a drill result and its figures to the report.json document.
func New(res *drill.Result, f drill.Figures, a Assessment) Report {
	c := res.Config
	r := Report{
		Schema:      Schema,
		Passed:      passed(res, a),
		ErrorBudget: a.Budget,
		Gates:       append([]Gate{}, a.Gates...),
		Trend:       a.Trend,
		Target:      res.Target,
		StartedAt:   res.Started.UTC(),
		EndedAt:     res.Ended.UTC(),
		DurationMS:  millis(res.Ended.Sub(res.Started)),
		Config: Config{
			LiveWindowMS: millis(c.Windows.Live), OutageWindowMS: millis(c.Windows.Outage), RecoveryWindowMS: millis(c.Windows.Recovery),
			ProbeIntervalMS: millis(c.Interval), ProbeTimeoutMS: millis(c.ProbeTimeout), ReadyTimeoutMS: millis(c.ReadyTimeout),
			AutoRollback: c.AutoRollback, FailuresToRollback: c.FailuresToRollback, RollbackTo: c.RollbackTo,
			FailureWindow: c.FailureWindow, FailureRatio: c.FailureRatio, LatencySLOMS: millis(c.LatencySLO),
			Fault: Fault{Kind: string(c.Fault.Kind), DelayMS: millis(c.Fault.Delay), UptimeMS: millis(c.Fault.Uptime)},
		},
		V:             image(res.V),
		Rollback:      Rollback{Kind: string(res.Rollback.Kind), Reason: res.Rollback.Reason, Trigger: res.RollbackTrigger, StartedAt: optTime(res.RollbackAt)},
		StopAt:        optTime(res.StopAt),
		FaultAt:       optTime(res.FaultAt),
		VVerified:     res.VerifiedV,
		Expectations:  []Expectation{},
		Phases:        []Phase{},
		Samples:       make([]Sample, 0, len(res.Samples)),
		Warnings:      append([]string{}, res.Warnings...),
		Error:         res.Error,
		TeardownError: res.TeardownError,
		Teardown: Teardown{Steps: []Step{}, Retention: res.Teardown.Retention,
			Left: append([]string{}, res.Teardown.Left...), Sweep: res.Teardown.Sweep},
		Figures: Figures{
			TimeToDetectMS: optMillis(f.TimeToDetect), TimeToRecoverMS: optMillis(f.TimeToRecover), ObservedDowntimeMS: optMillis(f.ObservedDowntime), FaultToHealthyMS: optMillis(f.FaultToHealthy),
			Probes: f.Probes, FailedProbes: f.Failed, Availability: []Availability{},
			LatencyMS: latency(f.Latency),
		},
	}
	if res.K.Ref != "" {
		k := image(res.K)
		r.K = &k
	}
	if c.Broken.Ref != "" {
		b := image(c.Broken)
		r.Config.Fault.Broken = &b
	}
	for _, s := range res.Teardown.Steps {
		r.Teardown.Steps = append(r.Teardown.Steps, Step{s.Name, millis(s.Took), s.Error})
	}
	for _, e := range res.Expectations {
		r.Expectations = append(r.Expectations, Expectation{string(e.Phase), e.Name, string(e.Status), e.Message})
	}
	for _, m := range res.Marks {
		p := Phase{Phase: string(m.Phase), Start: m.Start.UTC(), End: m.End.UTC(), DurationMS: millis(m.Duration())}
		for _, s := range res.Steps[m.Phase] {
			p.Steps = append(p.Steps, Step{s.Name, millis(s.Took), s.Error})
		}
		r.Phases = append(r.Phases, p)
	}
	r.Figures.Availability = availability(f.Availability)
	if u := f.Users; u != nil {
		r.Figures.Users = &Users{Requests: u.Requests, Failed: u.Failed, Skipped: u.Skipped, ErrorRate: round(u.ErrorRate(), 6),
			ByPhase: availability(u.ByPhase), LatencyMS: latency(u.Latency)}
	}
	for _, s := range res.Samples {
		r.Samples = append(r.Samples, Sample{
			At: s.At.UTC(), OffsetMS: millis(s.At.Sub(res.Started)), Phase: string(s.Phase), Want: s.Want, Outcome: string(s.Outcome),
			LatencyMS: millis(s.Latency), Version: s.Version, Status: s.Status, Error: s.Err,
		})
	}
	r.Fleet = fleet(res)
	r.Figures.Fleet = fleetFigures(f)
	return r
}

func fleet(res *drill.Result) *Fleet {
	fr := res.Fleet
	if fr == nil {
		return nil
	}
	out := &Fleet{Balancer: fr.Balancer, Rolling: fr.Rolling, Hosts: append([]string{}, fr.Hosts...), Faulty: append([]string{}, fr.Faulty...),
		Polls: make([]Poll, 0, len(fr.Samples))}
	for _, s := range fr.Samples {
		p := Poll{At: s.At.UTC(), OffsetMS: millis(s.At.Sub(res.Started)), Phase: string(s.Phase), Healthy: s.Healthy(),
			States: make([]HostState, 0, len(s.Hosts)), Error: s.Err}
		for _, h := range s.Hosts {
			p.States = append(p.States, HostState{h.Host, h.State, h.Reason})
		}
		out.Polls = append(out.Polls, p)
	}
	return out
}

func fleetFigures(f drill.Figures) *FleetFigures {
	ff := f.Fleet
	if ff == nil {
		return nil
	}
	out := &FleetFigures{Hosts: ff.Hosts, FaultyHosts: ff.FaultyHosts, OutOfRotationMS: optMillis(ff.OutOfRotation), PerHost: []HostFigures{}}
	if ff.MinCapacity >= 0 {
		out.MinCapacity = &ff.MinCapacity
	}
	if ff.RollbackMinCapacity >= 0 {
		out.RollbackMinCapacity = &ff.RollbackMinCapacity
	}
	if f.Users != nil {
		out.OutageUsers = userWindow(ff.OutageRequests, ff.OutageFailed)
		out.RollbackUsers = userWindow(ff.RollbackRequests, ff.RollbackFailed)
	}
	for _, h := range ff.PerHost {
		out.PerHost = append(out.PerHost, HostFigures{Host: h.Host, Faulty: h.Faulty, OutOfRotationMS: optMillis(h.OutOfRotation),
			BackInRotationMS: optMillis(h.BackInRotation), InRotation: round(h.InRotation, 6)})
	}
	return out
}

func userWindow(requests, failed int) *UserWindow {
	w := &UserWindow{Requests: requests, Failed: failed}
	if requests > 0 {
		w.ErrorRate = round(float64(failed)/float64(requests), 6)
	}
	return w
}

// JSON renders report.json: indented, with one sample (and one poll of a fleet's load
// balancer) per line so that a long drill stays readable and compact.
func JSON(res *drill.Result, f drill.Figures, a Assessment) ([]byte, error) {
	r := New(res, f, a)
	samples := r.Samples
	r.Samples = []Sample{}
	var polls []Poll
	if r.Fleet != nil {
		polls = r.Fleet.Polls
		r.Fleet.Polls = []Poll{}
	}
	doc, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	if doc, err = linePerElement(doc, "  ", "samples", samples); err != nil {
		return nil, err
	}
	if r.Fleet != nil {
		if doc, err = linePerElement(doc, "    ", "polls", polls); err != nil {
			return nil, err
		}
	}
	return append(doc, '\n'), nil
}

// linePerElement writes elems one per line into the indented document doc, in place of the
// empty array under key at that indent.
func linePerElement[T any](doc []byte, indent, key string, elems []T) ([]byte, error) {
	empty := "\n" + indent + `"` + key + `": []` // a string value cannot contain it unescaped
	i := bytes.Index(doc, []byte(empty))
	if i < 0 {
		return nil, fmt.Errorf("encode report: %s key not found", key)
	}
	var b bytes.Buffer
	b.Grow(len(doc) + 200*len(elems))
	b.Write(doc[:i])
	b.WriteString(empty[:len(empty)-1])
	enc := json.NewEncoder(&b)
	for j, e := range elems {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n" + indent + "  ")
		if err := enc.Encode(e); err != nil {
			return nil, fmt.Errorf("encode %s[%d]: %w", key, j, err)
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	if len(elems) > 0 {
		b.WriteString("\n" + indent)
	}
	b.WriteString("]")
	b.Write(doc[i+len(empty):])
	return b.Bytes(), nil
}

func image(i drill.Image) Image {
	return Image{Ref: i.Ref, Tag: i.Tag, Version: i.Version, Digest: i.Digest}
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(x*p) / p
}

func optMillis(d drill.NullDuration) *float64 {
	if !d.Valid {
		return nil
	}
	ms := millis(d.D)
	return &ms
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func latency(l drill.LatencyStats) Latency {
	return Latency{Count: l.Count, P50: millis(l.P50), P95: millis(l.P95), P99: millis(l.P99), Max: millis(l.Max)}
}

func availability(in []drill.Availability) []Availability {
	out := []Availability{}
	for _, a := range in {
		mix := map[string]int{}
		for o, n := range a.Outcomes {
			mix[string(o)] = n
		}
		out = append(out, Availability{string(a.Phase), a.Probes, a.Healthy, round(a.Ratio(), 6), mix})
	}
	return out
}
