package drill

import "time"

// FleetFigures are a fleet drill's measurements from the load balancer's view and the users'
// requests.
type FleetFigures struct {
	Hosts, FaultyHosts int
	// OutOfRotation: the fault (Result.RotationFrom) to the poll that found the last faulty
	// host out of rotation, when the load balancer sent none of them new requests any more.
	OutOfRotation NullDuration
	// MinCapacity is the fewest hosts in rotation in one poll during the outage (-1: no poll);
	// RollbackMinCapacity the same during the rollback (a rolling one keeps all but one).
	MinCapacity, RollbackMinCapacity int
	PerHost                          []HostFigures
	// Users during the outage and the rollback: what users saw while the load balancer
	// routed around the faulty hosts, and while the fleet rolled back (the goal is 0 failed).
	OutageRequests, OutageFailed     int
	RollbackRequests, RollbackFailed int
}

// HostFigures are one host's.
type HostFigures struct {
	Host   string
	Faulty bool
	// OutOfRotation: the fault (Result.RotationFrom) to the first poll that found it out of
	// rotation.
	OutOfRotation NullDuration
	// BackInRotation: the rollback's start to the poll that found it in rotation again after
	// its rollback (it left for the deploy of K).
	BackInRotation NullDuration
	// InRotation is the share of polls from the end of the deploy of V on that found it
	// in rotation.
	InRotation float64
}

// fleetFigures derives a fleet's figures; nil for a single host.
func fleetFigures(r *Result, users *UserFigures) *FleetFigures {
	fr := r.Fleet
	if fr == nil {
		return nil
	}
	f := &FleetFigures{Hosts: len(fr.Hosts), FaultyHosts: len(fr.Faulty), MinCapacity: -1, RollbackMinCapacity: -1}
	var since time.Time
	if m, ok := r.Mark(PhaseLive); ok {
		since = m.Start
	}
	from := r.RotationFrom()
	var polls, outage []HostSample
	for _, s := range fr.Samples {
		if s.Err != "" || s.At.Before(since) || since.IsZero() {
			continue
		}
		polls = append(polls, s)
		switch s.Phase {
		case PhaseStop, PhaseOutage:
			if !s.At.Before(from) {
				outage = append(outage, s)
			}
			f.MinCapacity = fewest(f.MinCapacity, s.Healthy())
		case PhaseRollback:
			f.RollbackMinCapacity = fewest(f.RollbackMinCapacity, s.Healthy())
		}
	}
	allOut := !r.FaultAt.IsZero() && len(fr.Faulty) > 0
	var last time.Duration
	for _, host := range fr.Hosts {
		h := HostFigures{Host: host, Faulty: fr.IsFaulty(host)}
		in := 0
		for _, s := range polls {
			if s.State(host).InRotation() {
				in++
			}
		}
		if len(polls) > 0 {
			h.InRotation = float64(in) / float64(len(polls))
		}
		if !r.FaultAt.IsZero() {
			if at, ok := leftRotation(outage, host); ok {
				h.OutOfRotation = NullDuration{at.Sub(from), true}
			}
		}
		if h.Faulty {
			if !h.OutOfRotation.Valid {
				allOut = false
			} else {
				last = max(last, h.OutOfRotation.D)
			}
		}
		if !r.RollbackAt.IsZero() {
			out := false
			for _, s := range polls {
				if s.At.Before(r.RollbackAt) {
					out = !s.State(host).InRotation()
					continue
				}
				switch st := s.State(host); {
				case !st.InRotation():
					out = true
				case out && !h.BackInRotation.Valid: // the first return: a flapping host's later ones are noise
					h.BackInRotation = NullDuration{s.At.Sub(r.RollbackAt), true}
					out = false
				}
			}
		}
		f.PerHost = append(f.PerHost, h)
	}
	if allOut {
		f.OutOfRotation = NullDuration{last, true}
	}
	if users != nil {
		for _, a := range users.ByPhase {
			switch a.Phase {
			case PhaseOutage, PhaseStop:
				f.OutageRequests += a.Probes
				f.OutageFailed += a.Probes - a.Healthy
			case PhaseRollback:
				f.RollbackRequests += a.Probes
				f.RollbackFailed += a.Probes - a.Healthy
			}
		}
	}
	return f
}

// RotationFrom is where a fleet's "fault → out of rotation" starts: when the load balancer's
// health checks could first fail because of the fault. The drill's own faults begin with the
// stop of V (StopAt): V refuses before docker stop returns, and a bad deploy's hosts stay
// registered, failing every check, while the broken build is pulled and started in place, so
// from FaultAt (Deploy(B) returned) the pull would come off the figure, down to nothing on a
// machine where it takes a health check interval or two. The target's faults are in effect
// when Inject returns (FaultAt). Zero before the fault.
func (r *Result) RotationFrom() time.Time {
	if r.FaultAt.IsZero() {
		return time.Time{}
	}
	switch r.Config.Fault.Kind {
	case FaultStop, FaultBadDeploy:
		return r.StopAt
	}
	return r.FaultAt
}

// fewest is the smaller capacity, -1 meaning none seen yet.
func fewest(have, c int) int {
	if have < 0 || c < have {
		return c
	}
	return have
}
