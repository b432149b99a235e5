package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
	"github.com/deploydrill/deploydrill/ci/target/local"
)

// drillOptions are the drill's own flags, beyond the pipeline's.
type drillOptions struct {
	target        string
	listen        string
	windows       drill.Windows
	interval      time.Duration
	probeTimeout  time.Duration
	readyTimeout  time.Duration
	autoRollback  bool
	failures      int
	rollbackTo    string
	reportDir     string
	keepVerified  int
	timeout       time.Duration
	teardownLimit time.Duration
}

func (o *drillOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.target, "target", envString("DRILL_TARGET", "local"), "where to drill: local (Dagger, needs nothing else) or aws (env DRILL_TARGET)")
	fs.StringVar(&o.listen, "listen", envString("DRILL_LISTEN", "127.0.0.1:8080"), "local target: the stable host address probes use (env DRILL_LISTEN)")
	fs.DurationVar(&o.windows.Live, "live", envDuration("DRILL_LIVE_WINDOW", drill.DefaultWindow), "live window: V up (env DRILL_LIVE_WINDOW)")
	fs.DurationVar(&o.windows.Outage, "outage", envDuration("DRILL_OUTAGE_WINDOW", drill.DefaultWindow), "outage window: service down (env DRILL_OUTAGE_WINDOW)")
	fs.DurationVar(&o.windows.Recovery, "recovery", envDuration("DRILL_RECOVERY_WINDOW", drill.DefaultWindow), "recovery window: K up (env DRILL_RECOVERY_WINDOW)")
	fs.DurationVar(&o.interval, "interval", envDuration("DRILL_PROBE_INTERVAL", drill.DefaultInterval), "probe interval, at least 100ms (env DRILL_PROBE_INTERVAL)")
	fs.DurationVar(&o.probeTimeout, "probe-timeout", envDuration("DRILL_PROBE_TIMEOUT", probe.DefaultTimeout), "per-probe timeout, capped at the interval (env DRILL_PROBE_TIMEOUT)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", envDuration("DRILL_READY_TIMEOUT", drill.DefaultReadyTimeout), "how long a new deploy may take to answer healthy (env DRILL_READY_TIMEOUT)")
	fs.BoolVar(&o.autoRollback, "auto-rollback", envBool("DRILL_AUTO_ROLLBACK", false), "roll back as soon as the watchdog sees --failures consecutive failed probes (env DRILL_AUTO_ROLLBACK)")
	fs.IntVar(&o.failures, "failures", envInt("DRILL_FAILURES_TO_ROLLBACK", drill.DefaultFailuresToRollback), "consecutive failed probes that trigger the automated rollback (env DRILL_FAILURES_TO_ROLLBACK)")
	fs.StringVar(&o.rollbackTo, "rollback-to", envString("DRILL_ROLLBACK_TO", ""), "roll back to this tag (default: the newest verified image that is not this one) (env DRILL_ROLLBACK_TO)")
	fs.StringVar(&o.reportDir, "report-dir", envString("DRILL_REPORT_DIR", "drill-report"), "where the report is written (env DRILL_REPORT_DIR)")
	fs.IntVar(&o.keepVerified, "keep-verified", envInt("DRILL_KEEP_VERIFIED", 5), "retention: keep V, K and this many newest verified images (env DRILL_KEEP_VERIFIED)")
	fs.DurationVar(&o.timeout, "timeout", envDuration("DRILL_TIMEOUT", 30*time.Minute), "overall deadline for the whole run (env DRILL_TIMEOUT)")
	fs.DurationVar(&o.teardownLimit, "teardown-timeout", envDuration("DRILL_TEARDOWN_TIMEOUT", drill.DefaultTeardownTimeout), "deadline for the teardown (env DRILL_TEARDOWN_TIMEOUT)")
}

// errDrillFailed: the drill ran but an expectation did not hold.
var errDrillFailed = errors.New("drill failed: an expectation did not hold (see the report)")

func drillCommand() command {
	const summary = "the whole drill: build, test, publish, deploy, outage, rollback, recovery, teardown, report"
	return command{name: "drill", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var o buildOptions
		var d drillOptions
		var a awsOptions
		fs := newFlagSet("drill", summary, stderr)
		o.register(fs)
		d.register(fs)
		a.register(fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		if d.target != "local" && d.target != "aws" {
			return fmt.Errorf("--target %q: want local or aws: %w", d.target, errUsage)
		}
		ctx, cancel := context.WithTimeout(ctx, d.timeout)
		defer cancel()
		if d.target == "aws" {
			return runAWSDrill(ctx, &o, &d, &a, stdout, stderr)
		}
		return runLocalDrill(ctx, &o, &d, stdout, stderr)
	}}
}

// drillRun is what both targets' jobs share: the pipeline job, V, and the drill's outcome.
type drillRun struct {
	*job
	d      *drillOptions
	stdout io.Writer
	stderr io.Writer
	v      drill.Image
	result *drill.Result
}

// drill is the stage that runs the drill itself against target.
func (r *drillRun) drill(target drill.Target, inventory drill.Inventory) stage {
	return stage{"drill", func(ctx context.Context) error {
		var err error
		r.result, err = drill.Run(ctx, r.config(), drill.Deps{
			Target:    target,
			Prober:    probe.New(r.d.probeTimeout),
			Inventory: inventory,
			Events:    drill.LineWriter(r.stderr),
			TeardownContext: func() (context.Context, context.CancelFunc) {
				return teardownContext(ctx, r.d.teardownLimit)
			},
		})
		return err
	}}
}

func (r *drillRun) config() drill.Config {
	return drill.Config{
		Image: r.v, Windows: r.d.windows, Interval: r.d.interval, ProbeTimeout: r.d.probeTimeout,
		ReadyTimeout: r.d.readyTimeout, AutoRollback: r.d.autoRollback, FailuresToRollback: r.d.failures,
		RollbackTo: r.d.rollbackTo, TeardownTimeout: r.d.teardownLimit,
	}
}

// leftovers is implemented by targets that can say what a failed teardown may have left.
type leftovers interface{ Leftovers() string }

// finish writes the report whenever the drill produced a result and decides the outcome.
func (r *drillRun) finish(target drill.Target, err error) error {
	if r.result == nil && err != nil {
		// A stage before the drill failed: the report still says so (CI uploads it).
		r.result = drill.Unstarted(target.Name(), r.config(), err, time.Now())
	}
	if r.result != nil && r.result.TeardownError != "" {
		if l, ok := target.(leftovers); ok {
			r.log.Printf("teardown", "may be left: %s", l.Leftovers())
		}
	}
	if r.result != nil {
		paths, reportErr := writeReport(r.d.reportDir, r.result)
		for _, p := range paths {
			fmt.Fprintln(r.stdout, p)
		}
		if reportErr != nil {
			err = errors.Join(err, fmt.Errorf("write report: %w", reportErr))
		}
	}
	if err != nil {
		return err
	}
	if !r.result.Passed() {
		return errDrillFailed
	}
	return nil
}

func runLocalDrill(ctx context.Context, o *buildOptions, d *drillOptions, stdout, stderr io.Writer) error {
	j, err := newJob(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer j.close()
	store, err := o.store()
	if err != nil {
		return err
	}
	target, err := local.New(local.Config{Images: store, Listen: d.listen, TempDir: o.cacheDir, LogOut: j.engineLog})
	if err != nil {
		return err
	}
	r := &drillRun{job: j, d: d, stdout: stdout, stderr: stderr}
	err = runStages(ctx, j.log, []stage{
		{"build", j.build},
		{"test", j.test},
		{"publish", func(ctx context.Context) (err error) {
			r.v, err = j.publishLocal(ctx, j.image, j.source.Version)
			if err == nil {
				fmt.Fprintln(stdout, r.v.Ref)
			}
			return err
		}},
		r.drill(target, store),
		{"retention", func(ctx context.Context) error {
			removed, err := store.Prune(ctx, []string{r.v.Tag, r.result.K.Tag}, d.keepVerified)
			for _, tag := range removed {
				j.log.Printf("retention", "removed %s:%s", o.imageName, tag)
			}
			return err
		}},
	})
	return r.finish(target, err)
}
