package drill

import (
	"slices"
	"time"

	"github.com/deploydrill/deploydrill/ci/probe"
)

// NullDuration is a figure that may not have been measured (the drill stopped early, or the
// event never happened).
type NullDuration struct {
	D     time.Duration
	Valid bool
}

// Availability is the share of healthy probes among those that started in one phase.
type Availability struct {
	Phase    Phase
	Probes   int
	Healthy  int
	Outcomes map[probe.Outcome]int // the mix: how many probes ended how
}

// Ratio is Healthy/Probes, 0 without probes.
func (a Availability) Ratio() float64 {
	if a.Probes == 0 {
		return 0
	}
	return float64(a.Healthy) / float64(a.Probes)
}

// LatencyStats summarise probe latencies (nearest-rank percentiles).
type LatencyStats struct {
	Count         int
	P50, P95, P99 time.Duration
	Max           time.Duration
}

// PhaseTime is how long a phase ran.
type PhaseTime struct {
	Phase    Phase
	Duration time.Duration
}

// Figures are the drill's measurements, all derived from a Result. A probe's verdict counts at
// the moment it became known: Sample.Observed, its start plus its latency.
type Figures struct {
	// TimeToDetect: StopAt to the first failed probe observed after it.
	TimeToDetect NullDuration
	// TimeToRecover: RollbackAt to the first probe that found K healthy.
	TimeToRecover NullDuration
	// ObservedDowntime: the detecting failed probe to the first healthy probe of K after it (a
	// fleet's: the first healthy probe of any version, the fleet serving again).
	ObservedDowntime NullDuration
	// FaultToHealthy: the fault (a broken build: going live) to the first healthy probe of K,
	// the whole incident as a user would time it.
	FaultToHealthy NullDuration
	// Availability per phase that had probes, in phase order.
	Availability []Availability
	// Latency of healthy probes only: failed probes measure the failure (a refusal is instant,
	// a timeout is the timeout), not the service.
	Latency LatencyStats
	Phases  []PhaseTime
	Probes  int // all probes
	Failed  int // probes that were not healthy
	// Users is what the users' load saw; nil when the drill ran without one.
	Users *UserFigures
	// Fleet is a fleet drill's; nil for a single host.
	Fleet *FleetFigures
}

// UserFigures summarise the users' requests: how many, how many failed and how, per window,
// and the latency users got when they were answered.
type UserFigures struct {
	Requests int // sent
	Failed   int // sent and not answered below 400
	Skipped  int // not sent: every client was busy (a hung service holds them)
	ByPhase  []Availability
	Latency  LatencyStats // answered requests
}

// ErrorRate is Failed/Requests, the user-facing error rate (0 without requests).
func (u UserFigures) ErrorRate() float64 {
	if u.Requests == 0 {
		return 0
	}
	return float64(u.Failed) / float64(u.Requests)
}

func userFigures(requests []RequestSample) *UserFigures {
	u := &UserFigures{}
	perPhase := map[Phase]*Availability{}
	var latencies []time.Duration
	for _, r := range requests {
		if r.Skipped {
			u.Skipped++
			continue
		}
		a := perPhase[r.Phase]
		if a == nil {
			a = &Availability{Phase: r.Phase, Outcomes: map[probe.Outcome]int{}}
			perPhase[r.Phase] = a
		}
		u.Requests++
		a.Probes++
		a.Outcomes[r.Outcome]++
		if r.Outcome == probe.OK {
			a.Healthy++
			latencies = append(latencies, r.Latency)
		} else {
			u.Failed++
		}
	}
	for _, p := range Phases {
		if a := perPhase[p]; a != nil {
			u.ByPhase = append(u.ByPhase, *a)
		}
	}
	u.Latency = latencyStats(latencies)
	return u
}

// ComputeFigures derives the figures from a result. It does not modify r.
func ComputeFigures(r *Result) Figures {
	f := Figures{Probes: len(r.Samples)}
	detect := -1
	// The outage starts when the fault is applied; a broken build's, when it went live.
	from := r.StopAt
	if r.Config.Fault.Kind == FaultBadDeploy {
		from = r.FaultAt
	}
	if !from.IsZero() {
		for i, s := range r.Samples {
			if !s.OK() && !s.Observed().Before(from) {
				detect = i
				f.TimeToDetect = NullDuration{s.Observed().Sub(from), true}
				break
			}
		}
	}
	if !r.RollbackAt.IsZero() {
		for _, s := range r.Samples {
			if healthyWith(s, r.K) && !s.At.Before(r.kFrom()) {
				f.TimeToRecover = NullDuration{s.Observed().Sub(r.RollbackAt), true}
				if !from.IsZero() {
					f.FaultToHealthy = NullDuration{s.Observed().Sub(from), true}
				}
				break
			}
		}
	}
	if detect >= 0 {
		down := r.Samples[detect].Observed()
		for _, s := range r.Samples[detect+1:] {
			// A single host serves again once K does; a fleet once any host answers healthy.
			if healthyWith(s, r.K) || r.Fleet != nil && s.OK() {
				f.ObservedDowntime = NullDuration{s.Observed().Sub(down), true}
				break
			}
		}
	}

	perPhase := map[Phase]*Availability{}
	latencies := make([]time.Duration, 0, len(r.Samples))
	for _, s := range r.Samples {
		a := perPhase[s.Phase]
		if a == nil {
			a = &Availability{Phase: s.Phase, Outcomes: map[probe.Outcome]int{}}
			perPhase[s.Phase] = a
		}
		a.Probes++
		a.Outcomes[s.Outcome]++
		if s.OK() {
			a.Healthy++
			latencies = append(latencies, s.Latency)
		} else {
			f.Failed++
		}
	}
	for _, p := range Phases {
		if a := perPhase[p]; a != nil {
			f.Availability = append(f.Availability, *a)
		}
	}
	f.Latency = latencyStats(latencies)
	if r.Config.LoadRPS > 0 {
		f.Users = userFigures(r.Requests)
	}
	f.Fleet = fleetFigures(r, f.Users)
	for _, m := range r.Marks {
		f.Phases = append(f.Phases, PhaseTime{m.Phase, m.Duration()})
	}
	return f
}

func healthyWith(s Sample, img Image) bool {
	return s.OK() && s.Version == img.Version
}

// latencyStats sorts ds in place.
func latencyStats(ds []time.Duration) LatencyStats {
	if len(ds) == 0 {
		return LatencyStats{}
	}
	slices.Sort(ds)
	rank := func(p int) time.Duration { // nearest rank: the smallest value with p% at or below it
		return ds[max(0, (p*len(ds)+99)/100-1)]
	}
	return LatencyStats{Count: len(ds), P50: rank(50), P95: rank(95), P99: rank(99), Max: ds[len(ds)-1]}
}
