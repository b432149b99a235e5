package drill

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/deploydrill/deploydrill/ci/probe"
)

// ReadinessInterval paces the probes of a phase that waits for a version to come up (baseline,
// deploy, rollback) until one finds it healthy: readiness is measured at this grain, not at the
// probe interval's (a 1 s interval would round a 0.2 s rollback up to a second).
const ReadinessInterval = 50 * time.Millisecond

// StartUp reports the phases that wait for a version to come up: their probes measure how long
// that took, not the service's availability.
func StartUp(p Phase) bool { return p == PhaseBaseline || p == PhaseDeploy || p == PhaseRollback }

// monitor probes the target at a fixed interval from its own goroutine, so probing never pauses
// while the drill waits on the target (a slow Stop or Deploy is watched, not skipped); in a
// start-up phase it probes every ReadinessInterval until the version answers healthy. One probe
// is in flight at a time. Each sample is tagged with the phase and expected version in force when
// it started; the drill switches both under the same lock, so a sample's tag agrees with the
// phase marks.
type monitor struct {
	clock      Clock
	prober     Prober
	interval   time.Duration
	timeout    time.Duration
	latencySLO time.Duration // a healthy answer slower than this is "slow"; 0: none

	mu        sync.Mutex
	phase     Phase
	want      string
	also      string // another version that counts as healthy in this phase (a fleet mid-rollback)
	endpoint  string
	samples   []Sample
	inflight  *flight   // the probe running now, nil between probes
	closed    bool      // no new probes
	up        bool      // a probe of this phase, started since readyFrom, found its version healthy
	readyFrom time.Time // when the phase's deploy was called: no earlier probe can have found it

	notify chan struct{} // signalled after each recorded sample; capacity 1
	wake   chan struct{} // signalled when a start-up phase begins: probe at once; capacity 1
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has returned; nil until started
}

type flight struct {
	phase Phase
	done  chan struct{}
}

func newMonitor(clock Clock, prober Prober, interval, timeout time.Duration) *monitor {
	return &monitor{clock: clock, prober: prober, interval: interval, timeout: timeout,
		notify: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
}

// switchTo makes new probes carry phase and expect want; it returns the switch time.
func (m *monitor) switchTo(phase Phase, want string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase, m.want, m.also = phase, want, ""
	now := m.clock.Now()
	if StartUp(phase) {
		m.readyLocked(now)
	}
	return now
}

// ready says the phase's deploy is being called now: readiness counts from here, at the fine
// grain again (a rollback first stops what the fault left, and an answer from that, of the same
// version when K is V re-created, says nothing about K).
func (m *monitor) ready() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	m.readyLocked(now)
	return now
}

func (m *monitor) readyLocked(now time.Time) {
	m.up, m.readyFrom = false, now
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// readying reports a start-up phase whose version has not answered healthy yet.
func (m *monitor) readying() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return StartUp(m.phase) && !m.up
}

// tolerate makes an answer from version healthy too until the next switch: a fleet's rolling
// rollback serves V from the hosts not rolled back yet, and that is service, not a failure.
func (m *monitor) tolerate(version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.also = version
}

// currentEndpoint and currentPhase are what the users' load needs from the monitor.
func (m *monitor) currentEndpoint() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.endpoint
}

// nowIn is the time and the phase in force then, read together as a probe's are.
func (m *monitor) nowIn() (time.Time, Phase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clock.Now(), m.phase
}

func (m *monitor) currentPhase() Phase {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.phase
}

func (m *monitor) setEndpoint(endpoint string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.endpoint = endpoint
}

// start begins probing; the first probe starts now.
// start begins probing; once started it keeps going (a baseline's monitor carries on into the
// deploy of V).
func (m *monitor) start(ctx context.Context) {
	if m.done != nil {
		return
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.done = make(chan struct{})
	go m.loop(ctx)
}

func (m *monitor) loop(ctx context.Context) {
	defer close(m.done)
	g := newGrid(m.clock, m.interval)
	for {
		if !g.wait(ctx, m.wake) {
			return
		}
		select { // a wake that came while the last probe ran: this probe answers it
		case <-m.wake:
		default:
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		f := &flight{phase: m.phase, done: make(chan struct{})}
		phase, want, also, endpoint, at := m.phase, m.want, m.also, m.endpoint, m.clock.Now()
		m.inflight = f
		m.mu.Unlock()

		pctx, cancel := context.WithTimeout(ctx, m.timeout)
		s := m.prober.Probe(pctx, endpoint, want)
		cancel()
		s.At = at // the drill's clock, the one that stamps the phase marks
		if s.Outcome == probe.WrongVersion && also != "" && s.Version == also {
			s.Outcome, s.Err = probe.OK, ""
		}
		if m.latencySLO > 0 && s.OK() && s.Latency > m.latencySLO {
			s.Outcome, s.Err = probe.Slow, fmt.Sprintf("answered in %s, over the latency SLO %s", s.Latency.Round(time.Millisecond), m.latencySLO)
		}

		m.mu.Lock()
		if ctx.Err() == nil { // a probe cut short by the drill ending says nothing about the target
			m.samples = append(m.samples, Sample{Phase: phase, Want: want, Sample: s})
			if phase == m.phase && s.OK() && !at.Before(m.readyFrom) {
				m.up = true
			}
		}
		m.inflight = nil
		close(f.done)
		m.mu.Unlock()
		select {
		case m.notify <- struct{}{}:
		default:
		}
		if ctx.Err() != nil {
			return
		}
		if m.readying() {
			g.soon(ReadinessInterval)
		} else {
			g.advance()
		}
	}
}

// grid paces a loop to start + k × interval on the drill's clock; after an overrun of a whole
// interval it restarts from now rather than firing a burst to catch up.
type grid struct {
	clock    Clock
	interval time.Duration
	next     time.Time
}

func newGrid(clock Clock, interval time.Duration) *grid {
	return &grid{clock: clock, interval: interval, next: clock.Now()}
}

// wait returns at the next tick, or at once when wake is signalled (a nil wake never is), or
// false once ctx ended.
func (g *grid) wait(ctx context.Context, wake <-chan struct{}) bool {
	if d := g.next.Sub(g.clock.Now()); d > 0 {
		select {
		case <-g.clock.After(d):
		case <-wake:
			g.next = g.clock.Now()
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// soon moves the next tick to d from now (a start-up phase's fine grain); the grid goes on from
// there.
func (g *grid) soon(d time.Duration) {
	g.next = g.clock.Now().Add(d)
}

// advance moves to the next tick once the loop's work is done.
func (g *grid) advance() {
	g.next = g.next.Add(g.interval)
	if now := g.clock.Now(); now.Sub(g.next) >= g.interval {
		g.next = now
	}
}

// settle waits for a probe that started in an earlier phase to finish, so that what the drill
// does next to the target (Stop, Deploy) cannot change that probe's answer.
func (m *monitor) settle(ctx context.Context) {
	m.mu.Lock()
	f, phase := m.inflight, m.phase
	m.mu.Unlock()
	if f == nil || f.phase == phase {
		return
	}
	select {
	case <-f.done:
	case <-ctx.Done():
	}
}

// since returns the samples recorded after the first n.
func (m *monitor) since(n int) []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Sample(nil), m.samples[min(n, len(m.samples)):]...)
}

// finish stops probing: it lets the probe in flight complete (unless ctx ends first) and
// returns once the loop has exited. Safe to call if the monitor never started.
func (m *monitor) finish(ctx context.Context) {
	m.mu.Lock()
	m.closed = true
	f := m.inflight
	m.mu.Unlock()
	if m.done == nil {
		return
	}
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
	m.cancel()
	<-m.done
}
