package drill

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/probe"
)

// FaultKind names what the drill does to V to start the outage.
type FaultKind string

const (
	FaultStop      FaultKind = "stop"       // graceful stop: the process exits
	FaultKill      FaultKind = "kill"       // SIGKILL of the app's processes: a crash, no graceful shutdown
	FaultHang      FaultKind = "hang"       // the processes are frozen: the port stays open, nothing answers
	FaultCrashloop FaultKind = "crashloop"  // the app dies shortly after every start and a restart policy restarts it
	FaultPartition FaultKind = "partition"  // traffic to the app's port is dropped on the host
	FaultSlow      FaultKind = "slow"       // every response is delayed by Fault.Delay
	FaultBadDeploy FaultKind = "bad-deploy" // a broken build of the same source replaces V
)

// Fault is one fault and its parameters.
type Fault struct {
	Kind FaultKind
	// Delay is what slow adds to every response (--fault-delay).
	Delay time.Duration
	// Uptime is how long crashloop lets the app run after each start before it dies.
	Uptime time.Duration
}

func (f Fault) String() string {
	switch f.Kind {
	case FaultSlow:
		return fmt.Sprintf("%s (delay %s)", f.Kind, f.Delay)
	case FaultCrashloop:
		return fmt.Sprintf("%s (up %s per start)", f.Kind, f.Uptime)
	}
	return string(f.Kind)
}

// Faulter is implemented by targets that inject faults other than a clean stop (and bad-deploy,
// which the drill runs with Stop and Deploy).
type Faulter interface {
	// Inject applies f to the running version and returns once the fault is in effect.
	Inject(ctx context.Context, f Fault) error
	// Clear removes everything Inject applied (thaws the processes, deletes the firewall rule,
	// drops the restart policy and the delay). Idempotent, a no-op with nothing injected; the
	// drill calls it before the rollback and teardown calls it again.
	Clear(ctx context.Context) error
}

// faultSpec is one entry of the fault table: what the outage must look like, so a hang that
// shows refusals (or a stop that shows timeouts) fails the outage's expectation.
type faultSpec struct {
	// symptoms are the probe outcomes the outage may show; flapping also admits ok answers.
	symptoms []probe.Outcome
	flapping bool
	// injected: the target's Faulter does it (otherwise the drill does it with Stop/Deploy).
	injected bool
	what     string // for logs and the report
}

// faults is the table every fault kind is one entry of.
var faults = map[FaultKind]faultSpec{
	FaultStop:      {symptoms: []probe.Outcome{probe.Refused, probe.Reset}, what: "graceful stop"},
	FaultKill:      {symptoms: []probe.Outcome{probe.Refused, probe.Reset}, injected: true, what: "SIGKILL of the app's processes"},
	FaultHang:      {symptoms: []probe.Outcome{probe.Timeout}, injected: true, what: "the app's processes frozen"},
	FaultCrashloop: {symptoms: []probe.Outcome{probe.Refused, probe.Reset, probe.Timeout}, flapping: true, injected: true, what: "the app dies after every start and is restarted"},
	FaultPartition: {symptoms: []probe.Outcome{probe.Timeout}, injected: true, what: "traffic to the app's port dropped on the host"},
	FaultSlow:      {symptoms: []probe.Outcome{probe.Timeout, probe.Slow}, injected: true, what: "every response delayed"},
	FaultBadDeploy: {symptoms: []probe.Outcome{probe.HTTPError, probe.WrongVersion}, what: "a broken build of the same source deployed over V"},
}

// FaultKinds lists the kinds, for flags and help.
func FaultKinds() []string {
	var out []string
	for k := range faults {
		out = append(out, string(k))
	}
	slices.Sort(out)
	return out
}

// ParseFault checks a --fault value.
func ParseFault(kind string) (FaultKind, error) {
	if _, ok := faults[FaultKind(kind)]; !ok {
		return "", fmt.Errorf("fault %q: want one of %s", kind, strings.Join(FaultKinds(), ", "))
	}
	return FaultKind(kind), nil
}

// expected reports whether a probe outcome is a symptom this fault may show during the outage.
func (s faultSpec) expected(o probe.Outcome) bool {
	return slices.Contains(s.symptoms, o) || s.flapping && o == probe.OK
}

// Default fault parameters.
const (
	DefaultFaultDelay  = 2 * time.Second
	DefaultCrashUptime = 2 * time.Second
)
