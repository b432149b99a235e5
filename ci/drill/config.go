package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/deploydrill/deploydrill/ci/probe"
)

// Defaults for a zero Config field.
const (
	DefaultWindow             = 60 * time.Second
	DefaultInterval           = time.Second
	MinInterval               = 100 * time.Millisecond
	DefaultReadyTimeout       = 60 * time.Second
	DefaultFailuresToRollback = 3
)

// Windows are how long the drill watches each state.
type Windows struct {
	Live     time.Duration // V up, after it first answered healthy
	Outage   time.Duration // after Stop returned; the watchdog may end it early
	Recovery time.Duration // K up, after it first answered healthy
}

// Config says what to drill and how. Zero fields take the defaults above; Run takes only a
// Config that went through Normalize (once, when the run's input is checked).
type Config struct {
	Image    Image    // V: the version under drill, usually this commit's image
	Rollback Rollback // K and why it was chosen: PickRollback, once per run
	Windows  Windows  //
	// Interval between probe starts, at least MinInterval.
	Interval time.Duration
	// ProbeTimeout bounds one probe; it is capped at Interval so at most one probe is in flight.
	ProbeTimeout time.Duration
	// ReadyTimeout bounds the wait for a freshly deployed version (V, then K) to answer healthy.
	ReadyTimeout time.Duration
	// Fault is what starts the outage; the zero Fault is a graceful stop.
	Fault Fault
	// Broken is B, the broken build of the same source that bad-deploy ships over V.
	Broken Image
	// LatencySLO, when set, makes a healthy probe slower than it a failure ("slow").
	LatencySLO time.Duration
	// LoadRPS is the users' load the drill sends (Deps.Load) in requests per second; 0: none.
	LoadRPS int
	// AutoRollback lets a watchdog start the rollback instead of waiting the outage window
	// out: after FailuresToRollback consecutive failed probes, or, with FailureWindow set,
	// when at least FailureRatio of the last FailureWindow probes failed (a flapping service,
	// e.g. 3 of the last 5, never fails N in a row).
	AutoRollback       bool
	FailuresToRollback int
	FailureWindow      int
	FailureRatio       float64
	// Fleet is how many hosts run behind a load balancer and how many of them the fault hits
	// (a Target that is a Fleet); the zero FleetShape is one host.
	Fleet FleetShape
	// RollbackTo names K's tag explicitly (a unique prefix will do); empty picks the most recent
	// verified image that is not V.
	RollbackTo string

	normalized bool
}

// Normalize fills defaults and rejects settings the drill cannot honour. It does not look at
// Image and Rollback: those are known only once the image is published; Run checks them.
func (c Config) Normalize() (Config, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Windows.Live, DefaultWindow)
	def(&c.Windows.Outage, DefaultWindow)
	def(&c.Windows.Recovery, DefaultWindow)
	def(&c.Interval, DefaultInterval)
	def(&c.ProbeTimeout, probe.DefaultTimeout)
	def(&c.ReadyTimeout, DefaultReadyTimeout)
	if c.FailuresToRollback == 0 {
		c.FailuresToRollback = DefaultFailuresToRollback
	}
	if c.Fault.Kind == "" {
		c.Fault.Kind = FaultStop
	}
	if c.Fault.Kind == FaultSlow {
		def(&c.Fault.Delay, DefaultFaultDelay)
	}
	if c.Fault.Kind == FaultCrashloop {
		def(&c.Fault.Uptime, DefaultCrashUptime)
	}
	if c.FailureWindow > 0 && c.FailureRatio == 0 {
		c.FailureRatio = 0.6 // 3 of 5
	}
	c.ProbeTimeout = min(c.ProbeTimeout, c.Interval)

	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"live window", c.Windows.Live}, {"outage window", c.Windows.Outage}, {"recovery window", c.Windows.Recovery},
		{"probe timeout", c.ProbeTimeout}, {"ready timeout", c.ReadyTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", d.name, d.v))
		}
	}
	if c.Interval < MinInterval {
		errs = append(errs, fmt.Errorf("probe interval %v: must be at least %v", c.Interval, MinInterval))
	}
	for _, w := range []struct {
		name string
		v    time.Duration
	}{{"live window", c.Windows.Live}, {"outage window", c.Windows.Outage}, {"recovery window", c.Windows.Recovery}, {"ready timeout", c.ReadyTimeout}} {
		if w.v > 0 && w.v < c.Interval { // it could end before a single probe
			errs = append(errs, fmt.Errorf("%s %v: shorter than the probe interval %v", w.name, w.v, c.Interval))
		}
	}
	if c.FailuresToRollback < 1 {
		errs = append(errs, fmt.Errorf("failures to rollback %d: must be at least 1", c.FailuresToRollback))
	}
	if _, err := ParseFault(string(c.Fault.Kind)); err != nil {
		errs = append(errs, err)
	}
	if c.Fault.Delay < 0 || c.Fault.Uptime < 0 || c.LatencySLO < 0 {
		errs = append(errs, errors.New("fault delay, crash uptime and latency SLO must not be negative"))
	}
	if c.Fault.Kind == FaultSlow && c.Fault.Delay <= c.ProbeTimeout && (c.LatencySLO == 0 || c.Fault.Delay <= c.LatencySLO) {
		errs = append(errs, fmt.Errorf("fault delay %v: a slow fault must exceed the probe timeout %v or the latency SLO to be seen", c.Fault.Delay, c.ProbeTimeout))
	}
	if c.Fleet.IsFleet() && (c.Fleet.FaultHosts < 1 || c.Fleet.FaultHosts > c.Fleet.Hosts) {
		errs = append(errs, fmt.Errorf("fault hosts %d: want 1 to the fleet's %d hosts", c.Fleet.FaultHosts, c.Fleet.Hosts))
	}
	if c.FailureWindow < 0 || c.FailureRatio < 0 || c.FailureRatio > 1 {
		errs = append(errs, fmt.Errorf("failure window %d, ratio %g: want a window of at least 1 probe and a ratio in (0, 1]", c.FailureWindow, c.FailureRatio))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("drill config: %w", err)
	}
	c.normalized = true
	return c, nil
}

// ready checks what Normalize cannot: the images.
func (c Config) ready() error {
	var errs []error
	if !c.normalized {
		errs = append(errs, errors.New("not normalized: call Config.Normalize first"))
	}
	for _, img := range []struct {
		name string
		Image
	}{{"image V", c.Image}, {"rollback image K", c.Rollback.Image}} {
		if img.Tag == "" || img.Ref == "" || img.Version == "" {
			errs = append(errs, fmt.Errorf("%s: tag, ref and version are required", img.name))
		}
	}
	if c.Fault.Kind == FaultBadDeploy && (c.Broken.Ref == "" || c.Broken.Tag == "") {
		errs = append(errs, errors.New("bad-deploy: the broken build B is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("drill config: %w", err)
	}
	return nil
}

// Prober checks the target's health endpoint once. *probe.Prober implements it; it must honour
// ctx's deadline, which the drill sets to Config.ProbeTimeout.
type Prober interface {
	Probe(ctx context.Context, endpoint, wantVersion string) probe.Sample
}

// Deps are the drill's collaborators.
type Deps struct {
	Target Target
	Prober Prober
	// Inventory records V as verified after its live window. Nil means none: nothing is marked.
	Inventory Inventory
	// Load, when set, sends users' traffic from the live window to the end of the recovery
	// window; the Result then holds what they saw (Requests).
	Load  Loader
	Clock Clock        // nil: the system clock
	Log   *slog.Logger // progress, one record per event with a "phase" attribute; nil discards
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
