package drill_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

var _ drill.Prober = (*probe.Prober)(nil)

// loopbackTarget serves /health on a fixed loopback address with a real HTTP server per
// deployed version: Stop closes it, Deploy starts a new one on the same port.
type loopbackTarget struct {
	drill.Target
	addr string

	mu  sync.Mutex
	srv *http.Server
}

var _ drill.Target = (*loopbackTarget)(nil)

func (l *loopbackTarget) Name() string     { return "loopback" }
func (l *loopbackTarget) Endpoint() string { return "http://" + l.addr }

func (l *loopbackTarget) Deploy(ctx context.Context, img drill.Image) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"status":"ok","version":%q}`, img.Version)
	})}
	go srv.Serve(ln)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.srv = srv
	return nil
}

func (l *loopbackTarget) Stop(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv == nil {
		return errors.New("nothing running")
	}
	err := l.srv.Close()
	l.srv = nil
	return err
}

func (l *loopbackTarget) Teardown(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv == nil {
		return nil
	}
	err := l.srv.Close()
	l.srv = nil
	return err
}

// The real prober, the real clock and real servers on loopback, with the windows short: the
// checks the issue asks of the local drill, against ground truth the test controls.
func TestRunOnLoopbackWithTheRealProber(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	target := &loopbackTarget{addr: addr}
	const interval = 100 * time.Millisecond
	v, k := image("v2"), image("v1")
	inv := &fakeInventory{records: []drill.Record{{Tag: "v1", Digest: "sha256:v1", Verified: true}, {Tag: "v2", Digest: "sha256:v2"}}}
	cfg, err := drill.Config{
		Image:        v,
		Windows:      drill.Windows{Live: 500 * time.Millisecond, Outage: 500 * time.Millisecond, Recovery: 500 * time.Millisecond},
		Interval:     interval,
		ReadyTimeout: 2 * time.Second,
	}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := drill.PickRollback(t.Context(), inv, v, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Rollback = rb.For(v)
	res, err := drill.Run(t.Context(), cfg, drill.Deps{Target: target, Prober: probe.New(0), Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res.RecordTeardown(start, time.Now(), drill.Teardown{}, target.Teardown(t.Context()))
	if !res.Passed() {
		t.Fatalf("drill failed: %+v", res.Expectations)
	}
	if res.K != k {
		t.Errorf("K %s, want v1", res.K.Tag)
	}
	for _, s := range res.PhaseSamples(drill.PhaseOutage) {
		if s.Outcome != probe.Refused {
			t.Errorf("outage sample %s (%s), want refused: the server is closed", s.Outcome, s.Err)
		}
	}
	for _, s := range res.PhaseSamples(drill.PhaseRecovery) {
		if !s.OK() || s.Version != k.Version {
			t.Errorf("recovery sample %s version %q, want healthy with %s", s.Outcome, s.Version, k.Version)
		}
	}
	f := drill.ComputeFigures(res)
	t.Logf("detect %v, recover %v, downtime %v, latency p50 %v p99 %v over %d probes",
		f.TimeToDetect.D, f.TimeToRecover.D, f.ObservedDowntime.D, f.Latency.P50, f.Latency.P99, f.Probes)
	if !f.TimeToDetect.Valid || f.TimeToDetect.D > 2*interval {
		t.Errorf("detected after %+v, want within two probe intervals", f.TimeToDetect)
	}
	if !f.TimeToRecover.Valid || !f.ObservedDowntime.Valid {
		t.Errorf("recover %+v, downtime %+v: want both measured", f.TimeToRecover, f.ObservedDowntime)
	}
	if got := inv.Marked(); len(got) != 1 || got[0] != "v2" {
		t.Errorf("marked %q, want v2", got)
	}
	if s := probe.New(0).Probe(t.Context(), target.Endpoint(), ""); s.Outcome != probe.Refused {
		t.Errorf("after teardown the endpoint answers %s, want refused", s.Outcome)
	}
}
