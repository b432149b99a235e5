package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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
	DefaultTeardownTimeout    = 2 * time.Minute
)

// Windows are how long the drill watches each state.
type Windows struct {
	Live     time.Duration // V up, after it first answered healthy
	Outage   time.Duration // after Stop returned; the watchdog may end it early
	Recovery time.Duration // K up, after it first answered healthy
}

// Config says what to drill and how. Zero fields take the defaults above.
type Config struct {
	Image   Image   // V: the version under drill, usually this commit's image
	Windows Windows //
	// Interval between probe starts, at least MinInterval.
	Interval time.Duration
	// ProbeTimeout bounds one probe; it is capped at Interval so at most one probe is in flight.
	ProbeTimeout time.Duration
	// ReadyTimeout bounds the wait for a freshly deployed version (V, then K) to answer healthy.
	ReadyTimeout time.Duration
	// AutoRollback lets a watchdog start the rollback after FailuresToRollback consecutive failed
	// probes in the outage window instead of waiting the window out.
	AutoRollback       bool
	FailuresToRollback int
	// RollbackTo names K's tag explicitly (a unique prefix will do); empty picks the most recent
	// verified image that is not V.
	RollbackTo string
	// TeardownTimeout bounds Teardown when Deps.TeardownContext is nil.
	TeardownTimeout time.Duration
}

// Normalize fills defaults and rejects settings the drill cannot honour.
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
	def(&c.TeardownTimeout, DefaultTeardownTimeout)
	if c.FailuresToRollback == 0 {
		c.FailuresToRollback = DefaultFailuresToRollback
	}
	c.ProbeTimeout = min(c.ProbeTimeout, c.Interval)

	var errs []error
	if c.Image.Tag == "" || c.Image.Ref == "" || c.Image.Version == "" {
		errs = append(errs, errors.New("image: tag, ref and version are required"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"live window", c.Windows.Live}, {"outage window", c.Windows.Outage}, {"recovery window", c.Windows.Recovery},
		{"probe timeout", c.ProbeTimeout}, {"ready timeout", c.ReadyTimeout}, {"teardown timeout", c.TeardownTimeout}} {
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
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("drill config: %w", err)
	}
	return c, nil
}

// Prober checks the target's health endpoint once. *probe.Prober implements it; it must honour
// ctx's deadline, which the drill sets to Config.ProbeTimeout.
type Prober interface {
	Probe(ctx context.Context, endpoint, wantVersion string) probe.Sample
}

// Event is one progress line.
type Event struct {
	At      time.Time
	Phase   Phase
	Message string
}

// Deps are the drill's collaborators.
type Deps struct {
	Target Target
	Prober Prober
	// Inventory lists rollback candidates and records verified versions. Nil means none: the
	// drill re-creates V as its rollback.
	Inventory Inventory
	Clock     Clock       // nil: the system clock
	Events    func(Event) // progress; nil discards. Called from one goroutine at a time.
	// TeardownContext makes the context Teardown runs with. It must not derive from the run's
	// context, which may be cancelled by then; nil means Background with Config.TeardownTimeout.
	TeardownContext func() (context.Context, context.CancelFunc)
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// LineWriter formats events as "15:04:05.000 phase     message" lines on w, one write per line.
func LineWriter(w io.Writer) func(Event) {
	var mu sync.Mutex
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s %-9s %s\n", e.At.Format("15:04:05.000"), e.Phase, e.Message)
	}
}
