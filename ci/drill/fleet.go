package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fleet is implemented by a target of several hosts behind a load balancer; the drill treats
// it as one when Config.Fleet says so (a single host's target may implement it too). The
// drill's phases are the same; what changes is where the fault lands and who judges it: the
// fault hits the Faulty part of the fleet only, the load balancer should take those hosts out
// of rotation while the others keep serving, and the target's Deploy is a rolling deploy
// across the fleet (the faulty hosts first), so a rollback drops no user's request.
type Fleet interface {
	Fleet() FleetInfo
	// Faulty is the fleet's faulty hosts as a target: its Stop and Deploy act on those hosts
	// alone and in place (a bad deploy is not rolled out, it lands), and it is a Faulter when
	// the fleet is.
	Faulty() Target
	// TargetHealth is every registered host's state as the load balancer sees it now.
	TargetHealth(ctx context.Context) ([]HostState, error)
	// Isolate takes the faulty hosts out of the load balancer and returns once they drained:
	// the rollback then stops what runs on them without cutting a request the load balancer
	// still sent them (a fault it never noticed, a crashloop that passes its checks).
	Isolate(ctx context.Context) error
}

// FleetInfo describes a fleet.
type FleetInfo struct {
	Hosts    []string // every host (instance id), in rollout order: the faulty first
	Faulty   []string // the hosts the fault hits
	Balancer string   // the load balancer's name, for the report
	Rolling  bool     // Deploy is one host at a time (deregister, drain, deploy, healthy), else all at once
}

// FleetShape is the drill's fleet settings (--hosts, --fault-hosts); Hosts 0 or 1 is a single
// host.
type FleetShape struct {
	Hosts      int
	FaultHosts int
}

// IsFleet reports whether the drill runs on several hosts behind a load balancer.
func (s FleetShape) IsFleet() bool { return s.Hosts > 1 }

// HostState is one host as the load balancer sees it.
type HostState struct {
	Host   string
	State  string // healthy, initial, unhealthy, draining, unused, unavailable (AWS's words)
	Reason string // e.g. Target.FailedHealthChecks
}

// InRotation reports a host the load balancer sends new requests to.
func (h HostState) InRotation() bool { return h.State == "healthy" }

// HostSample is one poll of the load balancer's view: every host's state at one moment.
type HostSample struct {
	At    time.Time
	Phase Phase
	Hosts []HostState // registered hosts only, sorted by host
	Err   string      // the poll failed: Hosts is empty
}

// Healthy is how many hosts were in rotation: the fleet's capacity at that moment.
func (s HostSample) Healthy() int {
	n := 0
	for _, h := range s.Hosts {
		if h.InRotation() {
			n++
		}
	}
	return n
}

// State is one host's state in this sample ("" when it was not registered).
func (s HostSample) State(host string) HostState {
	for _, h := range s.Hosts {
		if h.Host == host {
			return h
		}
	}
	return HostState{Host: host}
}

// FleetResult is what a fleet drill saw of its load balancer.
type FleetResult struct {
	FleetInfo
	Samples []HostSample // in the order polled, at the probe interval
}

// IsFaulty reports whether host is one the fault hit.
func (f *FleetResult) IsFaulty(host string) bool { return slices.Contains(f.Faulty, host) }

// balancerView polls the load balancer's view of the fleet at the probe interval from its own
// goroutine, like the monitor, tagging each poll with the phase in force when it started.
type balancerView struct {
	fleet    Fleet
	clock    Clock
	interval time.Duration
	timeout  time.Duration
	mon      *monitor // whose phase a poll carries, and whose notify wakes the drill

	mu      sync.Mutex
	samples []HostSample
	cancel  context.CancelFunc
	done    chan struct{}
}

func (v *balancerView) start(ctx context.Context) {
	if v == nil || v.done != nil {
		return
	}
	ctx, v.cancel = context.WithCancel(ctx)
	v.done = make(chan struct{})
	go v.loop(ctx)
}

func (v *balancerView) loop(ctx context.Context) {
	defer close(v.done)
	g := newGrid(v.clock, v.interval)
	for g.wait(ctx, nil) {
		at, phase := v.mon.nowIn()
		pctx, cancel := context.WithTimeout(ctx, v.timeout)
		hosts, err := v.fleet.TargetHealth(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s := HostSample{At: at, Phase: phase, Hosts: hosts}
		if err != nil {
			s.Hosts, s.Err = nil, err.Error()
		}
		slices.SortFunc(s.Hosts, func(a, b HostState) int { return strings.Compare(a.Host, b.Host) })
		v.mu.Lock()
		v.samples = append(v.samples, s)
		v.mu.Unlock()
		select {
		case v.mon.notify <- struct{}{}:
		default:
		}
		g.advance()
	}
}

func (v *balancerView) since(t time.Time) []HostSample {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []HostSample
	for _, s := range v.samples {
		if !s.At.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

func (v *balancerView) finish() []HostSample {
	if v == nil {
		return nil
	}
	if v.done != nil {
		v.cancel()
		<-v.done
	}
	return v.since(time.Time{})
}

// faultTarget is where the fault lands: the faulty hosts of a fleet, else the target itself.
func (r *run) faultTarget() Target {
	if r.fleet != nil {
		return r.fleet.Faulty()
	}
	return r.deps.Target
}

// outOfRotation is the load balancer's rollback rule, like an alarm on the target group's
// unhealthy host count that waits for the whole blast radius: it trips once a poll after the
// fault shows every faulty host out of rotation (each host's checks run on their own schedule,
// so they leave at different times), or at once when a host the fault did not hit leaves (the
// fault spread), and says which hosts.
func (r *run) outOfRotation() (string, bool) {
	info := r.fleet.Fleet()
	left := map[string]string{} // faulty host → how it was first seen out
	for _, s := range r.view.since(r.res.FaultAt) {
		if s.Phase != PhaseOutage || s.Err != "" {
			continue
		}
		for _, h := range s.Hosts {
			if h.InRotation() {
				continue
			}
			how := fmt.Sprintf("%s %s (%s)", h.Host, h.State, h.Reason)
			if !slices.Contains(info.Faulty, h.Host) {
				return "load balancer: " + how + ", a host the fault did not hit", true
			}
			if _, seen := left[h.Host]; !seen {
				left[h.Host] = how
			}
		}
		if len(left) == len(info.Faulty) { // each left once at least: the rule the expectation judges
			var out []string
			for _, host := range info.Faulty {
				out = append(out, left[host])
			}
			return "load balancer: " + strings.Join(out, ", "), true
		}
	}
	return "", false
}

// expectOutOfRotation is a fleet's outage expectation: every faulty host left the rotation
// after the fault (from Result.RotationFrom, as the figures) and every other host stayed in it
// (the fault did not spread, and the fleet kept its remaining capacity); what users saw
// through the load balancer is in the figures.
func (r *run) expectOutOfRotation() {
	info := r.fleet.Fleet()
	from := r.res.RotationFrom()
	polls := r.view.since(from)
	polls = slices.DeleteFunc(polls, func(s HostSample) bool { return s.Phase != PhaseOutage && s.Phase != PhaseStop })
	if len(polls) == 0 {
		r.expect(PhaseOutage, Failed, "no poll of the load balancer completed after the fault")
		return
	}
	var errs []error
	var out []string
	for _, host := range info.Faulty {
		at, ok := leftRotation(polls, host)
		if !ok {
			errs = append(errs, fmt.Errorf("%s still in rotation after %s", host, r.cfg.Fault.Kind))
			continue
		}
		out = append(out, fmt.Sprintf("%s after %s", host, fmtDur(at.Sub(from))))
	}
	for _, host := range info.Hosts {
		if slices.Contains(info.Faulty, host) {
			continue
		}
		for _, s := range polls {
			if st := s.State(host); s.Err == "" && !st.InRotation() {
				errs = append(errs, fmt.Errorf("%s, not faulted, left the rotation %s after the fault (%s %s)", host, fmtDur(s.At.Sub(from)), st.State, st.Reason))
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.expect(PhaseOutage, Failed, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	r.expect(PhaseOutage, Passed, "out of rotation: %s; %d of %d hosts kept serving", strings.Join(out, ", "),
		len(info.Hosts)-len(info.Faulty), len(info.Hosts))
}

// leftRotation is when the load balancer was first seen not routing to host.
func leftRotation(polls []HostSample, host string) (time.Time, bool) {
	for _, s := range polls {
		if s.Err == "" && !s.State(host).InRotation() {
			return s.At, true
		}
	}
	return time.Time{}, false
}
