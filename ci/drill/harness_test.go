package drill_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

// harness wires the fakes for one simulated drill. Create it inside a synctest bubble.
type harness struct {
	cfg    drill.Config
	clock  testClock
	target *fakeTarget
	prober *fakeProber
	inv    *fakeInventory

	prepare     bool // wrap the target so it implements Preparer
	noInventory bool // run with no Inventory at all
	verifyK     bool // K must pass the baseline before V is deployed
	users       drill.Loader

	mu     sync.Mutex
	events []event
}

// event is one progress record the drill logged.
type event struct {
	At      time.Time
	Phase   drill.Phase
	Message string
}

// collect is a slog handler that keeps every record as an event.
type collect struct{ h *harness }

func (c collect) Enabled(context.Context, slog.Level) bool { return true }
func (c collect) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c collect) WithGroup(string) slog.Handler            { return c }
func (c collect) Handle(_ context.Context, r slog.Record) error {
	e := event{At: r.Time, Message: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "phase" {
			e.Phase = drill.Phase(a.Value.String())
		}
		return true
	})
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.h.events = append(c.h.events, e)
	return nil
}

// newHarness: V is v2; the inventory holds v0 and v1 (verified) and v1b (not verified), so K is v1.
// Windows are 10 s, probes every second, deploys take 1.5 s to answer.
func newHarness() *harness {
	clock := newTestClock()
	target := &fakeTarget{clock: clock, boot: 1500 * time.Millisecond}
	return &harness{
		cfg: drill.Config{
			Image:        image("v2"),
			Windows:      drill.Windows{Live: 10 * time.Second, Outage: 10 * time.Second, Recovery: 10 * time.Second},
			Interval:     time.Second,
			ProbeTimeout: 500 * time.Millisecond,
			ReadyTimeout: 5 * time.Second,
		},
		clock:  clock,
		target: target,
		prober: &fakeProber{target: target, clock: clock, okLatency: 3 * time.Millisecond, downLatency: time.Millisecond},
		inv: &fakeInventory{records: []drill.Record{
			{Tag: "v0", Digest: "sha256:v0", PushedAt: base.Add(-48 * time.Hour), Verified: true},
			{Tag: "v1", Digest: "sha256:v1", PushedAt: base.Add(-24 * time.Hour), Verified: true},
			{Tag: "v1b", Digest: "sha256:v1b", PushedAt: base.Add(-time.Hour)},
			{Tag: "v2", Digest: "sha256:v2", PushedAt: base.Add(-time.Minute)},
		}},
	}
}

func (h *harness) run(ctx context.Context) (*drill.Result, error) {
	var target drill.Target = h.target
	if h.prepare {
		target = preparingTarget{h.target}
	}
	var inv drill.Inventory = h.inv
	if h.noInventory {
		inv = nil
	}
	// As the CLI's lifecycle does: normalize once, pick K once, then drill.
	cfg, err := h.cfg.Normalize()
	if err != nil {
		return nil, err
	}
	rb, err := drill.PickRollback(ctx, inv, cfg.Image, cfg.RollbackTo)
	if err != nil {
		return nil, err
	}
	cfg.Rollback = rb.For(cfg.Image)
	cfg.Rollback.Verify = h.verifyK
	res, err := drill.Run(ctx, cfg, drill.Deps{
		Target:    target,
		Prober:    h.prober,
		Inventory: inv,
		Clock:     h.clock,
		Log:       slog.New(collect{h}),
		Load:      h.users,
	})
	if res != nil { // the lifecycle's teardown, which released nothing here
		res.RecordTeardown(h.clock.Now(), h.clock.Now(), drill.Teardown{}, nil)
	}
	return res, err
}

// at is a time relative to the start of the drill.
func at(d time.Duration) time.Time { return base.Add(d) }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func expectations(r *drill.Result) map[drill.Phase]drill.Status {
	out := map[drill.Phase]drill.Status{}
	for _, e := range r.Expectations {
		out[e.Phase] = e.Status
	}
	return out
}

func phasesRun(r *drill.Result) []drill.Phase {
	var out []drill.Phase
	for _, m := range r.Marks {
		out = append(out, m.Phase)
	}
	return out
}

func countPhase(r *drill.Result, p drill.Phase) int { return len(r.PhaseSamples(p)) }

func checkCalls(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("target calls %q, want %q", got, want)
	}
}
