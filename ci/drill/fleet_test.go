package drill_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// entry is one change on a timeline: v holds from at on.
type entry[T any] struct {
	at time.Time
	v  T
}

// timeline is what a fake host is (or says) over simulated time, in time order.
type timeline[T any] []entry[T]

// set makes v hold from at on; whatever was scheduled after at is cancelled (a deploy
// overtakes a pending health-check verdict).
func (tl *timeline[T]) set(at time.Time, v T) {
	*tl = slices.DeleteFunc(*tl, func(e entry[T]) bool { return e.at.After(at) })
	*tl = append(*tl, entry[T]{at, v})
}

// at is the value holding at t; false before the first entry.
func (tl timeline[T]) at(t time.Time) (T, bool) {
	var v T
	found := false
	for _, e := range tl {
		if e.at.After(t) {
			break
		}
		v, found = e.v, true
	}
	return v, found
}

// last is the latest value scheduled, whenever it takes effect.
func (tl timeline[T]) last() (T, bool) {
	if len(tl) == 0 {
		var zero T
		return zero, false
	}
	return tl[len(tl)-1].v, true
}

// answer is what a host's process answers: version "" when nothing listens.
type answer struct {
	version string
	broken  bool // a broken build: every request, health checks included, gets a 500
}

// fakeHost is one host: what the load balancer says of it and what its process answers.
type fakeHost struct {
	lb    timeline[drill.HostState] // no entry: not registered
	serve timeline[answer]
}

// fakeFleet is N fake hosts behind a fake load balancer, in simulated time. Deploy is a rolling
// deploy (faulty hosts first): each host is deregistered ("draining"), its process replaced,
// registered again ("initial") and in rotation ("healthy") once it answers. A faulted host keeps
// its place in the rotation until its health checks have failed for the detection delay.
type fakeFleet struct {
	drill.Target
	clock  testClock
	ids    []string // rollout order: the faulty first
	faulty int      // how many of ids the fault hits

	boot        time.Duration            // a deployed host's process answers (and passes its checks) after this
	bootFor     map[string]time.Duration // per tag, overriding boot
	landFor     map[string]time.Duration // per tag: an in-place deploy on the faulty hosts returns after this (the pull and start)
	drain       time.Duration            // a deregistered host drains this long before its process is replaced
	detect      time.Duration            // a faulted host stays in rotation this long
	detectFor   map[string]time.Duration // per host, overriding detect
	blind       bool                     // health checks that never fail: a faulted host stays in rotation
	spreadTo    string                   // a host the fault spreads to, not faulted itself ...
	spreadAfter time.Duration            // ... this long after the fault
	deployErr   map[string]error         // per tag
	// pollErrAfterFault, when set, fails the first poll of the load balancer this long after
	// the fault (DescribeTargetHealth throttled).
	pollErrAfterFault time.Duration

	mu         sync.Mutex
	hosts      map[string]*fakeHost
	calls      []string
	faultAt    time.Time
	pollFailed bool
}

var (
	_ drill.Target  = (*fakeFleet)(nil)
	_ drill.Fleet   = (*fakeFleet)(nil)
	_ drill.Target  = faultyHosts{}
	_ drill.Faulter = faultyHosts{}
	_ drill.Prober  = (*lbProber)(nil)
	_ drill.Loader  = fleetUsers{}
)

func newFakeFleet(clock testClock, n, faulty int) *fakeFleet {
	f := &fakeFleet{clock: clock, faulty: faulty, boot: 1500 * time.Millisecond, drain: 300 * time.Millisecond,
		detect: 2500 * time.Millisecond, hosts: map[string]*fakeHost{}}
	for i := range n {
		id := fmt.Sprintf("i-%d", i+1)
		f.ids = append(f.ids, id)
		f.hosts[id] = &fakeHost{}
	}
	return f
}

func (f *fakeFleet) Name() string     { return "fleet" }
func (f *fakeFleet) Endpoint() string { return "http://lb-drill.test" }

func (f *fakeFleet) Fleet() drill.FleetInfo {
	return drill.FleetInfo{Hosts: slices.Clone(f.ids), Faulty: slices.Clone(f.ids[:f.faulty]), Balancer: "lb-drill", Rolling: true}
}

func (f *fakeFleet) Faulty() drill.Target { return faultyHosts{f} }

func (f *fakeFleet) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeFleet) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Deploy rolls img out one host at a time and returns once the last is in rotation.
func (f *fakeFleet) Deploy(ctx context.Context, img drill.Image) error {
	f.record("deploy %s", img.Tag)
	if err := f.deployErr[img.Tag]; err != nil {
		return err
	}
	for _, id := range f.ids {
		f.mu.Lock()
		h := f.hosts[id]
		_, registered := h.lb.at(f.clock.Now())
		if registered {
			h.lb.set(f.clock.Now(), drill.HostState{Host: id, State: "draining", Reason: "Target.DeregistrationInProgress"})
		}
		f.mu.Unlock()
		if registered {
			if err := f.clock.wait(ctx, f.drain); err != nil {
				return err
			}
		}
		f.mu.Lock()
		now := f.clock.Now()
		h.serve.set(now, answer{})
		h.lb.set(now, drill.HostState{Host: id, State: "initial", Reason: "Elb.RegistrationInProgress"})
		h.serve.set(now.Add(f.boot), answer{version: img.Version})
		h.lb.set(now.Add(f.boot), drill.HostState{Host: id, State: "healthy"})
		f.mu.Unlock()
		if err := f.clock.wait(ctx, f.boot); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops every host (the drill itself stops only the faulty ones, through Faulty).
// Isolate records the faulty hosts' leaving; the rollout that follows drains them anyway.
func (f *fakeFleet) Isolate(ctx context.Context) error {
	for _, id := range f.ids[:f.faulty] {
		f.record("isolate %s", id)
	}
	return nil
}

func (f *fakeFleet) Stop(ctx context.Context) error {
	f.record("stop fleet")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.ids {
		f.fail(id, f.clock.Now())
	}
	return nil
}

// fail makes host id stop answering at now; the load balancer's checks notice after the
// detection delay, unless they are blind. Call with f.mu held.
func (f *fakeFleet) fail(id string, now time.Time) {
	h := f.hosts[id]
	h.serve.set(now, answer{})
	if st, ok := h.lb.last(); f.blind || !ok || st.State != "healthy" {
		return // already on its way out, or never noticed
	}
	d, ok := f.detectFor[id]
	if !ok {
		d = f.detect
	}
	h.lb.set(now.Add(d), drill.HostState{Host: id, State: "unhealthy", Reason: "Target.FailedHealthChecks"})
}

// faulted is the fault landing at now: it may spread to a host it did not hit.
func (f *fakeFleet) faulted(now time.Time) {
	if !f.faultAt.IsZero() {
		return
	}
	f.faultAt = now
	if f.spreadTo != "" {
		h, at := f.hosts[f.spreadTo], now.Add(f.spreadAfter)
		h.serve.set(at, answer{})
		h.lb.set(at, drill.HostState{Host: f.spreadTo, State: "unhealthy", Reason: "Target.Timeout"})
	}
}

func (f *fakeFleet) TargetHealth(ctx context.Context) ([]drill.HostState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	if f.pollErrAfterFault > 0 && !f.faultAt.IsZero() && !f.pollFailed && !now.Before(f.faultAt.Add(f.pollErrAfterFault)) {
		f.pollFailed = true
		return nil, errors.New("describe target health: Throttling: Rate exceeded")
	}
	var out []drill.HostState
	for _, id := range slices.Backward(f.ids) { // any order: the drill sorts
		if st, ok := f.hosts[id].lb.at(now); ok {
			out = append(out, st)
		}
	}
	return out, nil
}

// route is the load balancer picking a host in rotation at t, round robin on *next, and what
// that host answers; false when no host is in rotation.
func (f *fakeFleet) route(t time.Time, next *int) (string, answer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var in []string
	for _, id := range f.ids {
		if st, ok := f.hosts[id].lb.at(t); ok && st.InRotation() {
			in = append(in, id)
		}
	}
	if len(in) == 0 {
		return "", answer{}, false
	}
	id := in[*next%len(in)]
	*next++
	a, _ := f.hosts[id].serve.at(t)
	return id, a, true
}

// faultyHosts is the fleet's faulty hosts as a target, in place: no rollout, no draining.
type faultyHosts struct{ f *fakeFleet }

func (h faultyHosts) Name() string     { return "fleet's faulty hosts" }
func (h faultyHosts) Endpoint() string { return "http://" + h.f.ids[0] + ".test" }

func (h faultyHosts) each(verb string, do func(id string, now time.Time)) {
	for _, id := range h.f.ids[:h.f.faulty] {
		h.f.record("%s %s", verb, id)
		h.f.mu.Lock()
		do(id, h.f.clock.Now())
		h.f.mu.Unlock()
	}
}

func (h faultyHosts) Stop(ctx context.Context) error {
	h.each("stop", func(id string, now time.Time) {
		h.f.fail(id, now)
		h.f.faulted(now)
	})
	return nil
}

// Deploy lands img on the faulty hosts in place; a broken build answers 500 to everything,
// so its hosts stay on their way out of the rotation.
func (h faultyHosts) Deploy(ctx context.Context, img drill.Image) error {
	if err := h.f.deployErr[img.Tag]; err != nil {
		return err
	}
	boot, ok := h.f.bootFor[img.Tag]
	if !ok {
		boot = h.f.boot
	}
	h.each("deploy "+img.Tag+" on", func(id string, now time.Time) {
		h.f.hosts[id].serve.set(now.Add(boot), answer{version: img.Version, broken: true})
		h.f.faulted(now)
	})
	return h.f.clock.wait(ctx, h.f.landFor[img.Tag]) // the stopped hosts stay registered meanwhile
}

func (h faultyHosts) Inject(ctx context.Context, fault drill.Fault) error {
	h.each("inject "+string(fault.Kind)+" on", func(id string, now time.Time) {
		h.f.fail(id, now)
		h.f.faulted(now)
	})
	return nil
}

func (h faultyHosts) Clear(ctx context.Context) error {
	h.each("clear", func(string, time.Time) {})
	return nil
}

// lbProber probes through the fake load balancer: a host in rotation answers with its version,
// a host that is down gets the client a 502, and no host in rotation a 503.
type lbProber struct {
	fleet       *fakeFleet
	clock       testClock
	okLatency   time.Duration
	downLatency time.Duration

	mu        sync.Mutex
	next      int // round robin
	endpoints map[string]int
}

func (p *lbProber) Probe(ctx context.Context, endpoint, want string) probe.Sample {
	start := p.clock.Now()
	p.mu.Lock()
	p.endpoints[endpoint]++
	host, a, routed := p.fleet.route(start, &p.next)
	p.mu.Unlock()
	s := probe.Sample{At: start}
	wait := p.downLatency
	switch {
	case endpoint != p.fleet.Endpoint():
		s.Outcome, s.Err = probe.Refused, "connect: connection refused" // only the load balancer listens
	case !routed:
		s.Outcome, s.Status, s.Err = probe.HTTPError, 503, "503 Service Unavailable: no healthy targets"
	case a.version == "":
		s.Outcome, s.Status, s.Err = probe.HTTPError, 502, "502 Bad Gateway from "+host
	case a.broken:
		s.Outcome, s.Status, s.Err = probe.HTTPError, 500, "500 Internal Server Error from "+host
	case a.version != want:
		s.Outcome, s.Status, s.Version, s.Err, wait = probe.WrongVersion, 200, a.version, "wrong version", p.okLatency
	default:
		s.Outcome, s.Status, s.Version, wait = probe.OK, 200, a.version, p.okLatency
	}
	if err := p.clock.wait(ctx, wait); err != nil {
		return probe.Sample{At: start, Outcome: probe.Timeout, Latency: p.clock.Now().Sub(start), Err: err.Error()}
	}
	s.Latency = p.clock.Now().Sub(start)
	return s
}

func (p *lbProber) Endpoints() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.endpoints)
}

// fleetUsers sends one user request every 500 ms through the fake load balancer; any answer
// from a live host is ok (a user does not mind the version).
type fleetUsers struct {
	fleet *fakeFleet
	clock testClock
}

func (u fleetUsers) Run(ctx context.Context, endpoint func() string, now func() time.Time, record func(drill.UserRequest)) {
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.clock.After(500 * time.Millisecond):
		}
		r := drill.UserRequest{At: now(), Outcome: probe.HTTPError, Status: 503, Latency: time.Millisecond}
		if _, a, ok := u.fleet.route(r.At, &next); ok && a.version != "" && !a.broken {
			r.Outcome, r.Status = probe.OK, 200
		} else if ok {
			r.Status = 502
		}
		record(r)
	}
}

// fleetHarness is the harness (config, clock, inventory, progress log) with the fake fleet as
// the target and the prober going through its load balancer. Create it inside a synctest bubble.
type fleetHarness struct {
	*harness
	fleet *fakeFleet
	lb    *lbProber
}

// newFleetHarness: n hosts, the first `faulty` of them the fault's, each taking 1.5 s to deploy and
// 300 ms to drain; a faulted host leaves the rotation 2.5 s after the fault. The rest is
// newHarness: V is v2, K is v1, 10 s windows, probes every second.
func newFleetHarness(n, faulty int) *fleetHarness {
	h := newHarness()
	h.cfg.Fleet = drill.FleetShape{Hosts: n, FaultHosts: faulty}
	f := newFakeFleet(h.clock, n, faulty)
	return &fleetHarness{harness: h, fleet: f,
		lb: &lbProber{fleet: f, clock: h.clock, okLatency: 3 * time.Millisecond, downLatency: time.Millisecond, endpoints: map[string]int{}}}
}

// run is harness.run with the fleet (its prepare and noInventory do not apply): normalize
// once, pick K once, then drill.
func (h *fleetHarness) run(ctx context.Context) (*drill.Result, error) {
	cfg, err := h.cfg.Normalize()
	if err != nil {
		return nil, err
	}
	rb, err := drill.PickRollback(ctx, h.inv, cfg.Image, cfg.RollbackTo)
	if err != nil {
		return nil, err
	}
	cfg.Rollback = rb.For(cfg.Image)
	cfg.Rollback.Verify = h.verifyK
	res, err := drill.Run(ctx, cfg, drill.Deps{
		Target:    h.fleet,
		Prober:    h.lb,
		Inventory: h.inv,
		Clock:     h.clock,
		Log:       slog.New(collect{h.harness}),
		Load:      h.users,
	})
	if res != nil {
		res.RecordTeardown(h.clock.Now(), h.clock.Now(), drill.Teardown{}, nil)
	}
	return res, err
}

const fleetOutageName = "the load balancer takes the faulty hosts out of rotation"

func hostFigures(f *drill.FleetFigures, host string) drill.HostFigures {
	for _, h := range f.PerHost {
		if h.Host == host {
			return h
		}
	}
	return drill.HostFigures{}
}

// within reports whether d is in [lo, lo+span).
func within(d drill.NullDuration, lo, span time.Duration) bool {
	return d.Valid && d.D >= lo && d.D < lo+span
}

// Three hosts, one stopped: the load balancer takes it out of rotation after its detection
// delay, that trips the auto-rollback, and the other two serve throughout.
func TestFleetDrillTakesTheFaultyHostOutOfRotationAndRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.AutoRollback = true
		h.cfg.LoadRPS = 2
		h.users = fleetUsers{fleet: h.fleet, clock: h.clock}
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if !res.Passed() {
			t.Fatalf("drill failed: %+v", res.Expectations)
		}
		checkCalls(t, h.fleet.Calls(), "deploy v2", "stop i-1", "deploy v1") // the fault on i-1 alone; the rollback on the fleet
		e := expectationByPhase(res, drill.PhaseOutage)
		if e.Name != fleetOutageName || e.Status != drill.Passed {
			t.Errorf("outage expectation %q %s, want %q passed", e.Name, e.Status, fleetOutageName)
		}
		if !strings.Contains(e.Message, "i-1 after") || !strings.Contains(e.Message, "2 of 3 hosts kept serving") {
			t.Errorf("outage message %q, want i-1 out and 2 of 3 serving", e.Message)
		}
		if want := "load balancer: i-1 unhealthy (Target.FailedHealthChecks)"; res.RollbackTrigger != want {
			t.Errorf("rollback trigger %q, want %q", res.RollbackTrigger, want)
		}
		// i-1 leaves the rotation 2.5 s after the fault; the first poll to see it is the
		// rollback's trigger, and the rollback starts at once.
		if d := res.RollbackAt.Sub(res.FaultAt); d < h.fleet.detect || d >= h.fleet.detect+h.cfg.Interval+ms(10) {
			t.Errorf("rollback %v after the fault, want within a poll of the 2.5s detection", d)
		}

		fr := res.Fleet
		if fr == nil {
			t.Fatal("no fleet result")
		}
		if want := h.fleet.Fleet(); !slices.Equal(fr.Hosts, want.Hosts) || !slices.Equal(fr.Faulty, []string{"i-1"}) ||
			fr.Balancer != "lb-drill" || !fr.Rolling || !fr.IsFaulty("i-1") || fr.IsFaulty("i-2") {
			t.Errorf("fleet info %+v, want %+v", fr.FleetInfo, want)
		}
		// Polls every interval from the end of the deploy of V (4.5 s: three hosts of 1.5 s)
		// to the end of the drill, each tagged with the phase it started in.
		if len(fr.Samples) < 20 {
			t.Fatalf("%d polls of the load balancer, want one a second for the whole drill", len(fr.Samples))
		}
		for i, s := range fr.Samples {
			if want := at(ms(4500) + time.Duration(i)*time.Second); !s.At.Equal(want) {
				t.Fatalf("poll %d at %v, want %v", i, s.At.Sub(base), want.Sub(base))
			}
			// A poll may end its phase: the one that trips the rollback is the outage's last.
			if m, ok := res.Mark(s.Phase); !ok || s.At.Before(m.Start) || s.At.After(m.End) {
				t.Errorf("poll %d at %v tagged %s, outside its phase %v..%v", i, s.At.Sub(base), s.Phase, m.Start.Sub(base), m.End.Sub(base))
			}
			if s.Err != "" || len(s.Hosts) != 3 || !slices.IsSortedFunc(s.Hosts, func(a, b drill.HostState) int { return strings.Compare(a.Host, b.Host) }) {
				t.Errorf("poll %d: %+v, want all three hosts, sorted", i, s)
			}
		}

		f := drill.ComputeFigures(res).Fleet
		if f == nil {
			t.Fatal("no fleet figures")
		}
		if f.Hosts != 3 || f.FaultyHosts != 1 {
			t.Errorf("figures for %d hosts, %d faulty; want 3, 1", f.Hosts, f.FaultyHosts)
		}
		if !within(f.OutOfRotation, h.fleet.detect, h.cfg.Interval) {
			t.Errorf("out of rotation after %+v, want within a poll interval of the 2.5s detection", f.OutOfRotation)
		}
		if f.MinCapacity != 2 {
			t.Errorf("min capacity %d, want 2: the fault took one host of three", f.MinCapacity)
		}
		if len(f.PerHost) != 3 {
			t.Fatalf("per-host figures %+v, want three", f.PerHost)
		}
		faulty := hostFigures(f, "i-1")
		if !faulty.Faulty || faulty.OutOfRotation != f.OutOfRotation {
			t.Errorf("i-1 %+v, want faulty, out of rotation as the fleet's %+v", faulty, f.OutOfRotation)
		}
		// The rollback redeploys i-1, i-2, i-3 in turn, 1.8 s each (drain, deploy): each is
		// back by the first poll after its turn ends.
		for i, host := range []string{"i-1", "i-2", "i-3"} {
			hf := hostFigures(f, host)
			if host != "i-1" && (hf.Faulty || hf.OutOfRotation.Valid) {
				t.Errorf("%s %+v, want not faulty and never out during the outage", host, hf)
			}
			if back := time.Duration(i+1) * ms(1800); !within(hf.BackInRotation, back, h.cfg.Interval) {
				t.Errorf("%s back in rotation %+v after the rollback started, want within a poll of %v", host, hf.BackInRotation, back)
			}
			if hf.InRotation <= 0.5 || hf.InRotation >= 1 {
				t.Errorf("%s in rotation in %.2f of the polls, want most but not all (it left for the rollback)", host, hf.InRotation)
			}
		}
		// Users: the faulty host is still in rotation for 2.5 s after the fault, so some of
		// their requests fail; the rolling rollback drains before it replaces, so none do then.
		if f.OutageRequests == 0 || f.OutageFailed == 0 || f.OutageFailed*2 > f.OutageRequests {
			t.Errorf("outage: %d of %d user requests failed, want some but at most half", f.OutageFailed, f.OutageRequests)
		}
		if f.RollbackRequests == 0 || f.RollbackFailed != 0 {
			t.Errorf("rollback: %d of %d user requests failed, want none of some", f.RollbackFailed, f.RollbackRequests)
		}
		if got := h.lb.Endpoints(); len(got) != 1 || got[h.fleet.Endpoint()] == 0 {
			t.Errorf("probed %v, want the load balancer only", got)
		}
	})
}

// A fault the target injects lands on the faulty hosts, and is stopped and cleared there.
func TestFleetDrillInjectsAndClearsOnTheFaultyHostsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.AutoRollback = true
		h.cfg.Fault = drill.Fault{Kind: drill.FaultKill}
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		checkCalls(t, h.fleet.Calls(), "deploy v2", "inject kill on i-1", "isolate i-1", "stop i-1", "clear i-1", "deploy v1")
		if e := expectationByPhase(res, drill.PhaseOutage); e.Name != fleetOutageName {
			t.Errorf("outage expectation %q, want %q for a fleet whatever the fault", e.Name, fleetOutageName)
		}
	})
}

// The outage expectation fails when the load balancer does not do its job: a host the fault
// did not hit leaves the rotation, or the faulty one never does.
func TestFleetDrillOutageFailures(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(h *fleetHarness)
		message   []string // substrings of the outage expectation's message
		notInMsg  string
		trigger   string
		capacity  int
		outOfRota bool // the fleet's OutOfRotation figure is valid
	}{{
		name: "the fault spreads to a host it did not hit",
		setup: func(h *fleetHarness) {
			h.fleet.spreadTo, h.fleet.spreadAfter = "i-2", 4*time.Second
		},
		message:   []string{"i-2, not faulted, left the rotation 4.", "unhealthy Target.Timeout"},
		notInMsg:  "i-1",
		trigger:   "outage window of 10s elapsed",
		capacity:  1,
		outOfRota: true,
	}, {
		name:     "the load balancer never takes the faulty host out",
		setup:    func(h *fleetHarness) { h.fleet.blind = true },
		message:  []string{"i-1 still in rotation after stop"},
		notInMsg: "i-2",
		trigger:  "outage window of 10s elapsed",
		capacity: 3,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newFleetHarness(3, 1)
				tt.setup(h)
				res, err := h.run(t.Context())
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if res.Passed() {
					t.Fatal("drill passed, want the outage failed")
				}
				e := expectationByPhase(res, drill.PhaseOutage)
				if e.Name != fleetOutageName || e.Status != drill.Failed {
					t.Errorf("outage expectation %q %s, want %q failed", e.Name, e.Status, fleetOutageName)
				}
				for _, want := range tt.message {
					if !strings.Contains(e.Message, want) {
						t.Errorf("outage message %q, want it to contain %q", e.Message, want)
					}
				}
				if strings.Contains(e.Message, tt.notInMsg) {
					t.Errorf("outage message %q, want no word of %s, which behaved", e.Message, tt.notInMsg)
				}
				for p, st := range expectations(res) {
					if p != drill.PhaseOutage && st != drill.Passed {
						t.Errorf("%s %s, want passed: only the outage went wrong", p, st)
					}
				}
				if res.RollbackTrigger != tt.trigger {
					t.Errorf("rollback trigger %q, want %q", res.RollbackTrigger, tt.trigger)
				}
				if d := res.RollbackAt.Sub(res.FaultAt); d < h.cfg.Windows.Outage {
					t.Errorf("rollback %v after the fault, want the whole %v window", d, h.cfg.Windows.Outage)
				}
				f := drill.ComputeFigures(res).Fleet
				if f.MinCapacity != tt.capacity || f.OutOfRotation.Valid != tt.outOfRota {
					t.Errorf("min capacity %d, out of rotation %+v; want %d, valid %v", f.MinCapacity, f.OutOfRotation, tt.capacity, tt.outOfRota)
				}
				checkCalls(t, h.fleet.Calls(), "deploy v2", "stop i-1", "deploy v1")
			})
		})
	}
}

// With auto-rollback, the load balancer's rule trips on the poll that shows the spread, and
// names the host it saw.
func TestFleetDrillRollsBackWhenTheFaultSpreads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.AutoRollback = true
		h.fleet.blind = true // only the spread is seen
		h.fleet.spreadTo, h.fleet.spreadAfter = "i-3", 1200*time.Millisecond
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if want := "load balancer: i-3 unhealthy (Target.Timeout), a host the fault did not hit"; res.RollbackTrigger != want {
			t.Errorf("rollback trigger %q, want %q", res.RollbackTrigger, want)
		}
		e := expectationByPhase(res, drill.PhaseOutage)
		if e.Status != drill.Failed || !strings.Contains(e.Message, "i-1 still in rotation") || !strings.Contains(e.Message, "i-3, not faulted, left the rotation") {
			t.Errorf("outage %s: %q, want both i-1 kept and i-3 lost named", e.Status, e.Message)
		}
	})
}

func TestFleetConfig(t *testing.T) {
	v := image("v2")
	for _, tt := range []struct {
		name  string
		shape drill.FleetShape
		err   string
	}{
		{"one faulty host of three", drill.FleetShape{Hosts: 3, FaultHosts: 1}, ""},
		{"every host faulty", drill.FleetShape{Hosts: 3, FaultHosts: 3}, ""},
		{"the zero shape is one host", drill.FleetShape{}, ""},
		{"one host needs no fault hosts", drill.FleetShape{Hosts: 1}, ""},
		{"no faulty host in a fleet is refused", drill.FleetShape{Hosts: 3}, "fault hosts 0: want 1 to the fleet's 3 hosts"},
		{"more faulty hosts than hosts is refused", drill.FleetShape{Hosts: 3, FaultHosts: 4}, "fault hosts 4: want 1 to the fleet's 3 hosts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := drill.Config{Image: v, Fleet: tt.shape}.Normalize()
			if tt.err == "" {
				if err != nil || c.Fleet != tt.shape {
					t.Fatalf("normalize: %v, fleet %+v; want %+v kept", err, c.Fleet, tt.shape)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}
}

// A fleet config needs a fleet target of that many hosts: otherwise the fault would land on
// every host, or the expectation would judge hosts the drill does not know.
func TestRunRefusesAFleetConfigWithoutThatFleet(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fleet bool // the target is the fake fleet of three hosts
		shape drill.FleetShape
		err   string
	}{
		{"a single-host target", false, drill.FleetShape{Hosts: 3, FaultHosts: 1}, "a fleet of 3 hosts, but the fake target is not a fleet"},
		{"a fleet of another size", true, drill.FleetShape{Hosts: 4, FaultHosts: 1}, "a fleet of 4 hosts, 1 faulty, but the fleet target has 3, 1 faulty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fh := newFleetHarness(3, 1)
				fh.cfg.Fleet = tt.shape
				run, calls := fh.run, fh.fleet.Calls
				if !tt.fleet {
					h := newHarness()
					h.cfg.Fleet = tt.shape
					run, calls = h.run, h.target.Calls
				}
				res, err := run(t.Context())
				if res != nil || err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("run = %v, %v; want no result and %q", res, err, tt.err)
				}
				checkCalls(t, calls())
			})
		})
	}
}

// A target that can be a fleet drills as one host when the config says one host: the whole
// target is stopped and judged by its probes, and nothing of a load balancer is reported.
func TestRunDrillsAFleetTargetAsOneHostWhenTheConfigSaysSo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.Fleet = drill.FleetShape{}
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkCalls(t, h.fleet.Calls(), "deploy v2", "stop fleet", "deploy v1")
		if e := expectationByPhase(res, drill.PhaseOutage); e.Name != "nothing answers after stop" {
			t.Errorf("outage expectation %q, want the single host's", e.Name)
		}
		if res.Fleet != nil || drill.ComputeFigures(res).Fleet != nil {
			t.Errorf("fleet result %+v, want none for one host", res.Fleet)
		}
	})
}

// K not verified yet: the baseline deploys and stops the whole fleet; the fault then lands on
// the faulty host only.
func TestFleetBaselineStopsTheWholeFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.RollbackTo = "v1b" // in the inventory, never verified
		h.verifyK = true
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if !res.Passed() {
			t.Fatalf("drill failed: %+v", res.Expectations)
		}
		checkCalls(t, h.fleet.Calls(), "deploy v1b", "stop fleet", "deploy v2", "stop i-1", "deploy v1b")
		m, _ := res.Mark(drill.PhaseLive)
		for _, s := range res.Fleet.Samples {
			if s.Phase == drill.PhaseBaseline && !s.At.Before(m.Start) {
				t.Errorf("baseline poll at %v, after the live window started at %v", s.At.Sub(base), m.Start.Sub(base))
			}
		}
		if f := drill.ComputeFigures(res).Fleet; f.MinCapacity != 2 {
			t.Errorf("min capacity %d, want 2: the baseline's stop of every host is not the outage", f.MinCapacity)
		}
	})
}

func TestFleetOutageExpectationIsNamedBeforeItRuns(t *testing.T) {
	fleet := drill.FleetShape{Hosts: 3, FaultHosts: 1}
	for _, tt := range []struct {
		name string
		cfg  drill.Config
		want string
	}{
		{"one host, stop", drill.Config{}, "nothing answers after stop"},
		{"one host, kill", drill.Config{Fault: drill.Fault{Kind: drill.FaultKill}}, "the outage shows the kill fault's symptoms"},
		{"a fleet, stop", drill.Config{Fleet: fleet}, fleetOutageName},
		{"a fleet, bad-deploy", drill.Config{Fleet: fleet, Fault: drill.Fault{Kind: drill.FaultBadDeploy}}, fleetOutageName},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := drill.Unstarted("aws", tt.cfg, errors.New("boot failed"), base)
			if e := expectationByPhase(res, drill.PhaseOutage); e.Name != tt.want || e.Status != drill.NotRun {
				t.Errorf("outage expectation %q %s, want %q not run", e.Name, e.Status, tt.want)
			}
		})
	}
	t.Run("a fleet drill that stopped at the deploy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newFleetHarness(3, 1)
			h.fleet.deployErr = map[string]error{"v2": errors.New("no capacity in us-east-1a")}
			res, err := h.run(t.Context())
			if err == nil || !strings.Contains(err.Error(), "deploy v2: no capacity") {
				t.Fatalf("run: %v, want the deploy's error", err)
			}
			if e := expectationByPhase(res, drill.PhaseOutage); e.Name != fleetOutageName || e.Status != drill.NotRun {
				t.Errorf("outage expectation %q %s, want %q not run", e.Name, e.Status, fleetOutageName)
			}
			if res.Fleet == nil || len(res.Fleet.Hosts) != 3 || len(res.Fleet.Samples) != 0 {
				t.Errorf("fleet result %+v, want the fleet's info and no polls", res.Fleet)
			}
			if f := drill.ComputeFigures(res).Fleet; f == nil || f.MinCapacity != -1 || f.OutOfRotation.Valid {
				t.Errorf("fleet figures %+v, want nothing measured", f)
			}
		})
	})
}

// bad-deploy lands the broken build on the faulty hosts in place, not through a rollout, and
// the drill does not wait for it to answer through the load balancer: it never may, as the
// load balancer takes it out once its health checks fail.
func TestFleetBadDeployLandsOnTheFaultyHostsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.AutoRollback = true
		h.cfg.Fault = drill.Fault{Kind: drill.FaultBadDeploy}
		h.cfg.Broken = image("v2-broken")
		h.fleet.bootFor = map[string]time.Duration{"v2-broken": 200 * time.Millisecond}
		h.fleet.detect = 2 * time.Second
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		checkCalls(t, h.fleet.Calls(), "deploy v2", "stop i-1", "deploy v2-broken on i-1", "isolate i-1", "stop i-1", "deploy v1")
		if !res.FaultAt.Equal(res.StopAt) {
			t.Errorf("fault in effect %v after the stop, want at once: no wait for B to answer", res.FaultAt.Sub(res.StopAt))
		}
		if want := "load balancer: i-1 unhealthy (Target.FailedHealthChecks)"; res.RollbackTrigger != want {
			t.Errorf("rollback trigger %q, want %q", res.RollbackTrigger, want)
		}
		for _, s := range res.PhaseSamples(drill.PhaseOutage) {
			if s.Version == "v2-broken" || s.Status == 200 && s.Version != "v2" {
				t.Errorf("outage probe %+v: want V from the healthy hosts or an error from i-1", s.Sample)
			}
		}
		if f := drill.ComputeFigures(res).Fleet; !within(f.OutOfRotation, h.fleet.detect, h.cfg.Interval) {
			t.Errorf("out of rotation after %+v, want within a poll of the 2s detection", f.OutOfRotation)
		}
	})
}

// A broken build that takes longer to land (pull and start) than the load balancer takes to
// notice the stopped V: the hosts stay registered and fail their checks from the stop of V on,
// so the figures count from there, not from Deploy(B) returning (which would take the pull off
// them, down to nothing or less).
func TestFleetBadDeployOutOfRotationCountsFromTheStopOfV(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.AutoRollback = true
		h.cfg.Fault = drill.Fault{Kind: drill.FaultBadDeploy}
		h.cfg.Broken = image("v2-broken")
		h.fleet.landFor = map[string]time.Duration{"v2-broken": 3 * time.Second}
		h.fleet.detect = 2 * time.Second
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		if d := res.FaultAt.Sub(res.StopAt); d != 3*time.Second {
			t.Fatalf("B landed %v after the stop, want the fake's 3s", d)
		}
		f := drill.ComputeFigures(res).Fleet
		if !within(f.OutOfRotation, h.fleet.detect, h.cfg.Interval) {
			t.Errorf("out of rotation after %+v, want within a poll of the 2s detection from the stop of V", f.OutOfRotation)
		}
		if hf := hostFigures(f, "i-1"); !within(hf.OutOfRotation, h.fleet.detect, h.cfg.Interval) {
			t.Errorf("i-1 out of rotation after %+v, want within a poll of the 2s detection from the stop of V", hf.OutOfRotation)
		}
		if e := expectationByPhase(res, drill.PhaseOutage); !strings.Contains(e.Message, "i-1 after 2") {
			t.Errorf("outage message %q, want i-1 out 2s and a poll after the stop of V", e.Message)
		}
	})
}

// Bad-deploy's broken build may never answer at all: the drill still must not wait for it.
func TestFleetBadDeployThatNeverAnswersIsNotWaitedFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.Fault = drill.Fault{Kind: drill.FaultBadDeploy}
		h.cfg.Broken = image("v2-broken")
		h.cfg.ReadyTimeout = 3 * time.Second // shorter than the outage window
		h.fleet.bootFor = map[string]time.Duration{"v2-broken": time.Hour}
		h.fleet.detect = time.Second
		res, err := h.run(t.Context())
		if err != nil || !res.Passed() {
			t.Fatalf("run: %v, expectations %+v", err, res.Expectations)
		}
		if !res.FaultAt.Equal(res.StopAt) {
			t.Errorf("fault in effect %v after the stop, want at once", res.FaultAt.Sub(res.StopAt))
		}
		if res.RollbackTrigger != "outage window of 10s elapsed" {
			t.Errorf("rollback trigger %q, want the window", res.RollbackTrigger)
		}
	})
}

// One failed poll of the load balancer (an API throttled) says nothing about the hosts: it must
// not count as a healthy host leaving the rotation.
func TestFleetDrillSurvivesAFailedPollOfTheLoadBalancer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFleetHarness(3, 1)
		h.cfg.AutoRollback = true
		h.fleet.pollErrAfterFault = 500 * time.Millisecond
		res, err := h.run(t.Context())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		failed := 0
		for _, s := range res.Fleet.Samples {
			if s.Err != "" {
				failed++
				if s.Phase != drill.PhaseOutage || len(s.Hosts) != 0 || !strings.Contains(s.Err, "Throttling") {
					t.Errorf("failed poll %+v, want an outage poll with its error and no hosts", s)
				}
			}
		}
		if failed != 1 {
			t.Fatalf("%d failed polls, want the one the fake failed", failed)
		}
		if e := expectationByPhase(res, drill.PhaseOutage); e.Status != drill.Passed {
			t.Errorf("outage %s: %q, want passed: a failed poll is no host leaving the rotation", e.Status, e.Message)
		}
		if want := "load balancer: i-1 unhealthy (Target.FailedHealthChecks)"; res.RollbackTrigger != want {
			t.Errorf("rollback trigger %q, want %q", res.RollbackTrigger, want)
		}
		if f := drill.ComputeFigures(res).Fleet; f.MinCapacity != 2 {
			t.Errorf("min capacity %d, want 2: a failed poll measures no capacity", f.MinCapacity)
		}
	})
}

// Two faulty hosts whose health checks fail a few seconds apart (each target's checks run on
// their own schedule): the load balancer does its job, so the drill must pass whether or not
// the auto-rollback is on.
func TestFleetDrillWithFaultyHostsDetectedInDifferentPolls(t *testing.T) {
	for _, auto := range []bool{false, true} {
		t.Run(fmt.Sprintf("auto-rollback %v", auto), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newFleetHarness(4, 2)
				h.cfg.AutoRollback = auto
				h.fleet.detectFor = map[string]time.Duration{"i-1": 2500 * time.Millisecond, "i-2": 4500 * time.Millisecond}
				res, err := h.run(t.Context())
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				checkCalls(t, h.fleet.Calls(), "deploy v2", "stop i-1", "stop i-2", "deploy v1")
				if e := expectationByPhase(res, drill.PhaseOutage); e.Status != drill.Passed {
					t.Errorf("outage %s: %q (trigger %q), want passed: both faulty hosts left the rotation within 5s",
						e.Status, e.Message, res.RollbackTrigger)
				}
				f := drill.ComputeFigures(res).Fleet
				if !within(f.OutOfRotation, 4500*time.Millisecond, h.cfg.Interval) || f.MinCapacity != 2 {
					t.Errorf("out of rotation %+v, min capacity %d; want the later host's 4.5s within a poll, and 2", f.OutOfRotation, f.MinCapacity)
				}
			})
		})
	}
}

// Failed probes through a load balancer that still has healthy hosts are the fault's blast
// radius: even a watchdog that trips on one failed probe leaves the rollback to the load
// balancer's rule, so the drill measures how long the load balancer takes. With every host
// faulted the probes judge again (the service is down), whichever rule trips first.
func TestFleetProbesJudgeOnlyWhenEveryHostIsFaulted(t *testing.T) {
	for _, tt := range []struct {
		hosts, faulty int
		trigger       string
	}{
		{3, 1, "load balancer: i-1 unhealthy"},
		{2, 2, "watchdog: 1 consecutive failed probes"},
	} {
		t.Run(fmt.Sprintf("%d of %d faulted", tt.faulty, tt.hosts), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newFleetHarness(tt.hosts, tt.faulty)
				h.cfg.AutoRollback, h.cfg.FailuresToRollback = true, 1
				res, err := h.run(t.Context())
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if !strings.HasPrefix(res.RollbackTrigger, tt.trigger) {
					t.Errorf("rollback trigger %q, want %q", res.RollbackTrigger, tt.trigger)
				}
				if e := expectationByPhase(res, drill.PhaseOutage); tt.faulty < tt.hosts && e.Status != drill.Passed {
					t.Errorf("outage %s: %s", e.Status, e.Message)
				}
			})
		})
	}
}
