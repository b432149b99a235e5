package drill_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// base is where every simulated drill starts; the bubble's own clock starts in 2000, so a
// timestamp from anything but the injected clock stands out.
var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testClock is the injected clock: synctest's fake time, shifted to base. Call it inside a
// synctest bubble only.
type testClock struct{ offset time.Duration }

func newTestClock() testClock { return testClock{offset: base.Sub(time.Now())} }

func (c testClock) Now() time.Time                         { return time.Now().Add(c.offset) }
func (c testClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (c testClock) wait(ctx context.Context, d time.Duration) error {
	select {
	case <-c.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fakeTarget serves one version at a time in simulated time.
type fakeTarget struct {
	drill.Target
	clock testClock

	boot        time.Duration            // from Deploy returning to answering healthy
	boots       map[string]time.Duration // per tag, overriding boot
	stopTakes   time.Duration            // how long Stop blocks
	diesAfter   time.Duration            // how far into Stop the process dies
	stopIgnored bool                     // Stop returns but the process keeps serving
	deployErr   map[string]error
	stopErr     error
	prepareErr  error
	prepareTook time.Duration

	mu           sync.Mutex
	running      string // version deployed, "" when none
	upAt, downAt time.Time
	calls        []string
}

var (
	_ drill.Target   = (*fakeTarget)(nil)
	_ drill.Preparer = (*preparingTarget)(nil)
)

func (f *fakeTarget) Name() string     { return "fake" }
func (f *fakeTarget) Endpoint() string { return "http://fake.test" }

func (f *fakeTarget) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeTarget) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeTarget) Deploy(ctx context.Context, img drill.Image) error {
	f.record("deploy %s", img.Tag)
	if err := f.deployErr[img.Tag]; err != nil {
		return err
	}
	boot, ok := f.boots[img.Tag]
	if !ok {
		boot = f.boot
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running, f.upAt, f.downAt = img.Version, f.clock.Now().Add(boot), time.Time{}
	return nil
}

// Inject takes the service down the way Stop does (the prober decides what down looks like).
func (f *fakeTarget) Inject(ctx context.Context, fault drill.Fault) error {
	f.record("inject %s", fault.Kind)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downAt = f.clock.Now()
	return nil
}

func (f *fakeTarget) Clear(context.Context) error {
	f.record("clear")
	return nil
}

var _ drill.Faulter = (*fakeTarget)(nil)

func (f *fakeTarget) Stop(ctx context.Context) error {
	f.record("stop")
	if f.stopErr != nil {
		return f.stopErr
	}
	if !f.stopIgnored {
		f.mu.Lock()
		f.downAt = f.clock.Now().Add(f.diesAfter)
		f.mu.Unlock()
	}
	return f.clock.wait(ctx, f.stopTakes)
}

// serving is the version answering at t, "" when nothing does.
func (f *fakeTarget) serving(t time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running == "" || t.Before(f.upAt) || (!f.downAt.IsZero() && !t.Before(f.downAt)) {
		return ""
	}
	return f.running
}

// preparingTarget is a fakeTarget that also implements Preparer.
type preparingTarget struct{ *fakeTarget }

func (p preparingTarget) Prepare(ctx context.Context, img drill.Image) error {
	p.record("prepare %s", img.Tag)
	if err := p.clock.wait(ctx, p.prepareTook); err != nil {
		return err
	}
	return p.prepareErr
}

// fakeProber asks the fake target what answers, taking simulated time to do it.
type fakeProber struct {
	target       *fakeTarget
	clock        testClock
	okLatency    time.Duration
	downLatency  time.Duration
	hangWhenDown bool // nothing answering is a timeout rather than a refusal
	judgeAtEnd   bool // a request fails if the server is gone by the time it would answer
}

func (p *fakeProber) Probe(ctx context.Context, endpoint, want string) probe.Sample {
	start := p.clock.Now()
	s := probe.Sample{At: start}
	version := p.target.serving(start)
	var wait time.Duration
	switch {
	case version == "" && p.hangWhenDown:
		<-ctx.Done()
		s.Outcome, s.Err = probe.Timeout, "context deadline exceeded"
		s.Latency = p.clock.Now().Sub(start)
		return s
	case version == "":
		s.Outcome, s.Err, wait = probe.Refused, "connect: connection refused", p.downLatency
	case version != want:
		s.Outcome, s.Version, s.Status, s.Err, wait = probe.WrongVersion, version, 200, "wrong version", p.okLatency
	default:
		s.Outcome, s.Version, s.Status, wait = probe.OK, version, 200, p.okLatency
	}
	if err := p.clock.wait(ctx, wait); err != nil {
		return probe.Sample{At: start, Outcome: probe.Timeout, Latency: p.clock.Now().Sub(start), Err: err.Error()}
	}
	s.Latency = p.clock.Now().Sub(start)
	if p.judgeAtEnd && version != "" && p.target.serving(p.clock.Now()) == "" {
		return probe.Sample{At: start, Outcome: probe.HTTPError, Latency: s.Latency, Err: "connection reset by peer"}
	}
	return s
}

// fakeInventory holds records and resolves tags to images.
type fakeInventory struct {
	drill.Inventory
	records []drill.Record
	listErr error
	markErr error

	mu     sync.Mutex
	marked []string
}

var _ drill.Inventory = (*fakeInventory)(nil)

func (f *fakeInventory) List(ctx context.Context) ([]drill.Record, error) {
	return append([]drill.Record(nil), f.records...), f.listErr
}

func (f *fakeInventory) Resolve(ctx context.Context, tag string) (drill.Image, error) {
	for _, r := range f.records {
		if r.Tag == tag {
			return image(tag), nil
		}
	}
	return drill.Image{}, fmt.Errorf("resolve %s: not found", tag)
}

func (f *fakeInventory) MarkVerified(ctx context.Context, tag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.marked = append(f.marked, tag)
	return f.markErr
}

func (f *fakeInventory) Marked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.marked...)
}

func image(tag string) drill.Image {
	return drill.Image{Ref: "app@sha256:" + tag, Tag: tag, Version: tag, Digest: "sha256:" + tag}
}
