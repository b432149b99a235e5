// Package drill runs a deploy drill against a Target: deploy V, prove it healthy, take it down,
// prove it down, roll back to K, prove K healthy, tear down, and hand the timeline to the report.
// It knows only small interfaces (Target, Preparer, Inventory, Clock here; Prober in config.go),
// so it is tested with fakes and an injected clock.
//
// Usage (the caller owns signals, the exit status and where progress goes):
//
//	res, err := drill.Run(ctx, drill.Config{
//		Image:        v, // this commit's image
//		Windows:      drill.Windows{Live: 60 * time.Second, Outage: 60 * time.Second, Recovery: 60 * time.Second},
//		Interval:     time.Second,
//		AutoRollback: true,
//	}, drill.Deps{
//		Target:    target,
//		Prober:    probe.New(time.Second),
//		Inventory: inventory,
//		Events:    drill.LineWriter(os.Stderr),
//	})
//	// res is nil only for bad input; otherwise write the report whatever happened.
//	ok := err == nil && res.Passed()
//	figures := drill.ComputeFigures(res)
package drill

import (
	"context"
	"time"
)

// Image is one immutable, deployable version of the app.
type Image struct {
	Ref     string // digest-pinned reference the target deploys, e.g. repo@sha256:...
	Tag     string // the immutable tag, e.g. a1b2c3d
	Version string // what the app reports in /health's "version"
	Digest  string // sha256:...
}

// Target is where the drill deploys. Implementations: local (Dagger), aws (EC2 over SSH).
type Target interface {
	// Name is a short word for logs and reports ("local", "aws").
	Name() string
	// Deploy starts a new process running img, replacing nothing: the caller stops the old one first.
	// It returns once the process has been started, not once it is healthy; the drill probes for that.
	Deploy(ctx context.Context, img Image) error
	// Stop takes the running version down for real: its process must be gone when Stop returns.
	Stop(ctx context.Context) error
	// Endpoint is the base URL probes use, e.g. http://127.0.0.1:8080.
	Endpoint() string
}

// Preparer is optionally implemented by targets that can get an image ready ahead of time: the
// AWS hosts pre-pull it, so the deploy needs no network; the local target starts it behind a
// tunnel of its own and waits for its answer, so the deploy is a switch (blue/green). The drill
// prepares K during the live window; the CLI prepares V and K while the rest is built.
type Preparer interface {
	Prepare(ctx context.Context, img Image) error
}

// Explainer is optionally implemented by targets that can say, step by step, how the version
// their last Deploy served came up (a prepared one: its steps from Prepare, then the switch)
// and how their last Stop went; the report shows it as where each phase's time went.
type Explainer interface {
	DeploySteps() []Step
	StopSteps() []Step
}

// Record is one image in the inventory of earlier drills.
type Record struct {
	Tag      string
	Digest   string
	PushedAt time.Time
	Verified bool // passed a health check in an earlier drill
}

// Inventory is the set of images a target can roll back to. Verified marks never move a tag:
// they are recorded as a second immutable tag (verified-<tag>) on the same digest.
type Inventory interface {
	List(ctx context.Context) ([]Record, error)
	MarkVerified(ctx context.Context, tag string) error
	// Resolve turns a tag into a deployable Image.
	Resolve(ctx context.Context, tag string) (Image, error)
}

// Clock is injected so the drill's timing is tested without sleeps.
type Clock interface {
	Now() time.Time
	// After waits like time.After.
	After(d time.Duration) <-chan time.Time
}
