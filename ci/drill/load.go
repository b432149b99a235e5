package drill

import (
	"context"
	"sync"
	"time"

	"github.com/deploydrill/deploydrill/ci/probe"
)

// UserRequest is one request of the users' load (ci/load): the probes measure the service,
// this measures what its users saw.
type UserRequest struct {
	At      time.Time
	Outcome probe.Outcome // ok for any answer below 400
	Latency time.Duration
	Status  int
	Skipped bool // every client was busy: not sent
}

// Loader sends users' traffic to endpoint() until ctx ends, handing each request to record
// (from several goroutines), and returns once every request it started has finished.
type Loader interface {
	Run(ctx context.Context, endpoint func() string, now func() time.Time, record func(UserRequest))
}

// RequestSample is a user request tagged with the phase in force when it started.
type RequestSample struct {
	Phase Phase
	UserRequest
}

// users runs the Loader from the live window to the end of the recovery window.
type users struct {
	mon  *monitor
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	samples []RequestSample
}

func (r *run) startUsers(ctx context.Context) {
	if r.deps.Load == nil || r.users != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	u := &users{mon: r.mon, stop: cancel, done: make(chan struct{})}
	r.users = u
	go func() {
		defer close(u.done)
		r.deps.Load.Run(ctx, u.mon.currentEndpoint, r.clock.Now, func(req UserRequest) {
			phase := u.mon.currentPhase() // corrected by stopUsers for a request older than it
			u.mu.Lock()
			defer u.mu.Unlock()
			u.samples = append(u.samples, RequestSample{Phase: phase, UserRequest: req})
		})
	}()
}

// stopUsers ends the load and returns what users saw.
func (r *run) stopUsers() []RequestSample {
	u := r.users
	if u == nil {
		return nil
	}
	u.stop()
	<-u.done
	r.users = nil
	u.mu.Lock()
	defer u.mu.Unlock()
	// A request belongs to the phase it started in: one that hung through the outage and timed
	// out after the rollback began is the outage's failure, not the rollback's.
	for i, req := range u.samples {
		if m, ok := r.res.Mark(req.Phase); ok && req.At.Before(m.Start) {
			u.samples[i].Phase = r.phaseAt(req.At)
		}
	}
	return u.samples
}

// phaseAt is the phase that ran at t: the last one that started at or before t.
func (r *run) phaseAt(t time.Time) Phase {
	p := r.phase
	for i := len(r.res.Marks) - 1; i >= 0; i-- {
		if p = r.res.Marks[i].Phase; !t.Before(r.res.Marks[i].Start) {
			break
		}
	}
	return p
}
