package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/environment"
	"github.com/deploydrill/deploydrill/ci/gitrev"
	"github.com/deploydrill/deploydrill/ci/history"
	"github.com/deploydrill/deploydrill/ci/load"
	"github.com/deploydrill/deploydrill/ci/probe"
	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/internal/retention"
)

// drillOptions are the drill's own flags, beyond the pipeline's and the targets'.
type drillOptions struct {
	target        string
	fault         string
	loadClients   int
	listen        string
	cfg           drill.Config // the drill's settings, normalized once by the validate stage
	reportDir     string
	keepVerified  int
	timeout       time.Duration
	teardownLimit time.Duration
}

func (o *drillOptions) register(f *flags) {
	f.String(&o.target, "target", "DRILL_TARGET", "local", "where to drill: "+targetNames())
	f.String(&o.listen, "listen", "DRILL_LISTEN", "127.0.0.1:8080", "local target: the stable host address probes use")
	f.String(&o.fault, "fault", "DRILL_FAULT", string(drill.FaultStop), "what starts the outage: "+strings.Join(drill.FaultKinds(), ", ")+" (README: the fault table)")
	f.Duration(&o.cfg.Fault.Delay, "fault-delay", "DRILL_FAULT_DELAY", drill.DefaultFaultDelay, "slow: the delay added to every response")
	f.Duration(&o.cfg.Fault.Uptime, "crash-uptime", "DRILL_CRASH_UPTIME", drill.DefaultCrashUptime, "crashloop: how long the app runs after each start before it dies")
	f.Int(&o.cfg.LoadRPS, "load", "DRILL_LOAD", 0, "users' load: this many real HTTP requests a second from keep-alive clients during every window (e.g. 20; 0: off)")
	f.Int(&o.loadClients, "load-clients", "DRILL_LOAD_CLIENTS", load.DefaultClients, "users' load: keep-alive connections, one request in flight each")
	f.Duration(&o.cfg.LatencySLO, "latency-slo", "DRILL_LATENCY_SLO", 0, "a healthy probe slower than this counts as failed (slow); 0: off")
	f.Int(&o.cfg.FailureWindow, "failure-window", "DRILL_FAILURE_WINDOW", 0, "watchdog: also roll back when --failure-ratio of the last N probes failed (catches flapping; 0: off)")
	f.Float(&o.cfg.FailureRatio, "failure-ratio", "DRILL_FAILURE_RATIO", 0.6, "watchdog: the share of --failure-window probes that must fail (0.6: 3 of 5)")
	f.Duration(&o.cfg.Windows.Live, "live", "DRILL_LIVE_WINDOW", drill.DefaultWindow, "live window: V up")
	f.Duration(&o.cfg.Windows.Outage, "outage", "DRILL_OUTAGE_WINDOW", drill.DefaultWindow, "outage window: service down")
	f.Duration(&o.cfg.Windows.Recovery, "recovery", "DRILL_RECOVERY_WINDOW", drill.DefaultWindow, "recovery window: K up")
	f.Duration(&o.cfg.Interval, "interval", "DRILL_PROBE_INTERVAL", drill.DefaultInterval, "probe interval, at least 100ms")
	f.Duration(&o.cfg.ProbeTimeout, "probe-timeout", "DRILL_PROBE_TIMEOUT", probe.DefaultTimeout, "per-probe timeout, capped at the interval")
	f.Duration(&o.cfg.ReadyTimeout, "ready-timeout", "DRILL_READY_TIMEOUT", drill.DefaultReadyTimeout, "how long a new deploy may take to answer healthy")
	f.Bool(&o.cfg.AutoRollback, "auto-rollback", "DRILL_AUTO_ROLLBACK", false, "roll back as soon as the watchdog sees --failures consecutive failed probes")
	f.Int(&o.cfg.FailuresToRollback, "failures", "DRILL_FAILURES_TO_ROLLBACK", drill.DefaultFailuresToRollback, "consecutive failed probes that trigger the automated rollback")
	f.String(&o.cfg.RollbackTo, "rollback-to", "DRILL_ROLLBACK_TO", "", "roll back to this tag (default: the newest verified image that is not this one)")
	f.String(&o.reportDir, "report-dir", "DRILL_REPORT_DIR", "drill-report", "where the report is written")
	f.Int(&o.keepVerified, "keep-verified", "DRILL_KEEP_VERIFIED", retention.DefaultKeepVerified,
		"retention, on every target: keep V, K and this many newest other verified images (0: only V and K)")
	f.Duration(&o.timeout, "timeout", "DRILL_TIMEOUT", 30*time.Minute, "overall deadline for the whole run")
	f.Duration(&o.teardownLimit, "teardown-timeout", "DRILL_TEARDOWN_TIMEOUT", 2*time.Minute,
		"deadline for the teardown (a fleet's is at least 10m: AWS keeps a load balancer's security group in use for minutes after it is deleted)")
}

// fleetTeardownLimit is the least a fleet's teardown gets: deleting a load balancer and
// waiting until it is gone takes a minute or two, and its security group stays in use for
// minutes after that while AWS releases its network interfaces.
const fleetTeardownLimit = 10 * time.Minute

// errDrillFailed: the drill ran but an expectation did not hold.
var errDrillFailed = errors.New("drill failed: an expectation did not hold (see the report)")

func drillCommand() command {
	const summary = "the whole drill: build, test, publish, deploy, outage, rollback, recovery, teardown, report"
	return command{name: "drill", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		r := &drillRun{stdout: stdout, stderr: stderr, provisioned: make(chan struct{})}
		f := newFlags("drill", summary, stderr)
		r.build.register(f)
		r.opts.register(f)
		r.hist.register(f)
		r.aws.register(f)
		if err := f.parse(args); err != nil {
			return err
		}
		r.log = newLogger(stderr, r.build.verbose)
		ctx, cancel := context.WithTimeout(ctx, r.opts.timeout)
		defer cancel()
		defer func() {
			if r.job != nil {
				r.job.close()
			}
		}()
		err := runStages(ctx, r, drillStages)
		switch {
		case err != nil || r.result == nil:
		case !r.result.Passed():
			err = errDrillFailed
		case !r.assessment.Passed():
			err = errGatesFailed
		}
		return err
	}}
}

// drillRun is the state the drill's stages hand each other.
type drillRun struct {
	build  buildOptions
	opts   drillOptions
	hist   historyOptions
	aws    awsOptions
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger

	target   targetKind
	env      environment.Environment
	job      *job // V's
	kjob     *job // K's, when K is built from git in this run
	bjob     *job // B's, the broken build bad-deploy ships
	broken   drill.Image
	dest     environment.Destination
	rollback drill.Rollback
	v        drill.Image
	result   *drill.Result
	failure  error // the first stage error, for a report of a drill that never started

	provisioned chan struct{} // closed once the target is up: images can be prepared on it

	started    time.Time
	history    history.Store // nil with --history off
	assessment report.Assessment
}

func (r *drillRun) logger() *slog.Logger { return r.log }

func (r *drillRun) stageFailed(err error) {
	if r.failure == nil {
		r.failure = err
	}
}

// drillStages is the drill's table of contents: every target runs the same stages.
var drillStages = []stage[*drillRun]{
	{name: "validate", run: (*drillRun).validate},
	{name: "registry", run: (*drillRun).registry},
	{name: "rollback", run: (*drillRun).pickRollback},
	{name: "connect", run: (*drillRun).connect},
	parallel("build+boot",
		[]stage[*drillRun]{
			{name: "build", run: (*drillRun).buildImage},
			{name: "test", run: (*drillRun).testImage},
			{name: "publish", run: (*drillRun).publish},
			{name: "prepare V", run: (*drillRun).prepareV},
		},
		[]stage[*drillRun]{
			{name: "build K", run: (*drillRun).buildK, skip: (*drillRun).kNotBuilt},
			{name: "test K", run: (*drillRun).testK, skip: (*drillRun).kNotBuilt},
			{name: "publish K", run: (*drillRun).publishK, skip: (*drillRun).kNotBuilt},
			{name: "prepare K", run: (*drillRun).prepare, skip: (*drillRun).kNotBuilt},
		},
		[]stage[*drillRun]{ // a broken build fails its own tests by design: none run
			{name: "build B", run: (*drillRun).buildB, skip: (*drillRun).noBadDeploy},
			{name: "publish B", run: (*drillRun).publishB, skip: (*drillRun).noBadDeploy},
		},
		[]stage[*drillRun]{
			{name: "provision", run: (*drillRun).provision},
			{name: "prepare", run: (*drillRun).prepare, skip: (*drillRun).nothingToPrepare},
		}),
	{name: "drill", run: (*drillRun).drill},
	{name: "teardown", run: (*drillRun).teardown, skip: (*drillRun).nothingCreated, always: true},
	{name: "history", run: (*drillRun).recordHistory, skip: (*drillRun).noHistory, always: true},
	{name: "report", run: (*drillRun).report, skip: (*drillRun).nothingCreated, always: true},
}

// validate checks every input before anything is created or connected: a mistake costs
// nothing and is a usage error (exit 2).
func (r *drillRun) validate(ctx context.Context) error {
	r.started = time.Now()
	var errs []error
	target, ok := findTarget(r.opts.target)
	if !ok {
		errs = append(errs, usageError("--target %q: want %s", r.opts.target, targetNames()))
	}
	kind, err := drill.ParseFault(r.opts.fault)
	if err != nil {
		errs = append(errs, usageError("--fault: %v", err))
	}
	r.opts.cfg.Fault.Kind = kind
	if kind != drill.FaultSlow {
		r.opts.cfg.Fault.Delay = 0
	}
	if kind != drill.FaultCrashloop {
		r.opts.cfg.Fault.Uptime = 0
	}
	if r.opts.cfg.FailureWindow == 0 {
		r.opts.cfg.FailureRatio = 0
	}
	if r.opts.cfg.LoadRPS != 0 {
		if err := r.loadConfig().Validate(); err != nil {
			errs = append(errs, usageError("--load: %v", err))
		}
	}
	if kind == drill.FaultBadDeploy && r.opts.cfg.RollbackTo != "" {
		errs = append(errs, usageError("--rollback-to with --fault bad-deploy: the rollback goes to V, the known-good version the broken build replaced"))
	}
	if err := r.aws.fleet.validate(); err != nil {
		errs = append(errs, err)
	}
	if r.opts.target != "aws" && r.aws.fleet.hosts > 1 {
		errs = append(errs, usageError("--hosts %d: a fleet behind a load balancer needs --target aws", r.aws.fleet.hosts))
	}
	r.opts.cfg.Fleet = r.aws.fleet.shape()
	cfg, err := r.opts.cfg.Normalize()
	if err != nil {
		errs = append(errs, usageError("%v", err))
	}
	if r.opts.keepVerified < 0 {
		errs = append(errs, usageError("--keep-verified %d: must not be negative", r.opts.keepVerified))
	}
	errs = append(errs, r.hist.validate())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if r.history, err = r.hist.open(ctx, r.build.cacheDir, &r.aws); err != nil {
		return err
	}
	r.opts.cfg = cfg
	j, err := planJob(ctx, &r.build, r.log, r.stderr)
	if err != nil {
		return err
	}
	r.job = j
	if kind == drill.FaultBadDeploy {
		r.bjob = j.sibling(j.version+"-broken", j.appDir)
		r.bjob.broken = "unhealthy"
	}
	r.target = target
	r.env, err = target.open(ctx, r)
	return err
}

func (r *drillRun) registry(ctx context.Context) (err error) {
	r.dest, err = r.env.Registry(ctx)
	return err
}

// pickRollback chooses K once, before anything is built, so the target can prepare it while V
// is built and a bad --rollback-to costs nothing. With no verified image other than V in the
// inventory, K is the previous commit (HEAD's parent; HEAD itself for a dirty tree), built,
// tested and published in this run and proven healthy before V is deployed; so is a
// --rollback-to that names a git revision rather than an image.
func (r *drillRun) pickRollback(ctx context.Context) error {
	if r.bjob != nil {
		r.rollback = drill.Rollback{Choice: drill.RollbackChoice{Kind: drill.RollbackRecreate, Tag: r.job.version,
			Reason: "bad-deploy rolls back to V, the known-good version the broken build replaced"}}
		r.log.Info(fmt.Sprintf("K %s: %s", r.job.version, r.rollback.Choice.Reason), "phase", "rollback")
		return nil
	}
	explicit := r.opts.cfg.RollbackTo
	rb, err := drill.PickRollback(ctx, r.env.Inventory(), drill.Image{Tag: r.job.version}, explicit)
	var rev string
	switch {
	case errors.Is(err, drill.ErrNotInInventory):
		rev = explicit
	case err != nil:
		return err
	case rb.Image.Tag == "" && explicit == "" && r.job.rev != nil:
		rev = "HEAD^"
		if r.job.rev.Dirty {
			rev = "HEAD"
		}
	}
	if rev != "" {
		fromGit, ok, gitErr := r.rollbackFromGit(ctx, rev, explicit != "")
		if gitErr != nil {
			return errors.Join(err, gitErr)
		}
		if ok {
			fromGit.VerifiedV = rb.VerifiedV
			rb = fromGit
		}
	}
	r.rollback = rb
	r.log.Info(fmt.Sprintf("K %s: %s", orRecreate(rb), rb.Choice.Reason), "phase", "rollback")
	return nil
}

// rollbackFromGit makes K from commit rev: the inventory's image of that commit when it has
// one, else a build of the commit's tree (exported from git, never the work tree). ok is false
// when there is no such commit and none was asked for (a first commit, a shallow clone).
func (r *drillRun) rollbackFromGit(ctx context.Context, rev string, asked bool) (drill.Rollback, bool, error) {
	commit, err := gitrev.Commit(ctx, r.build.appDir, rev)
	if err != nil {
		if asked {
			return drill.Rollback{}, false, err
		}
		r.log.Info(fmt.Sprintf("no commit %s to build K from (%v): the rollback re-creates V", rev, err), "phase", "rollback")
		return drill.Rollback{}, false, nil
	}
	tag := commit.Tag()
	if tag == r.job.version {
		return drill.Rollback{}, false, nil
	}
	choice := drill.RollbackChoice{Kind: drill.RollbackGit, Tag: tag}
	inv := r.env.Inventory()
	if img, err := inv.Resolve(ctx, tag); err == nil {
		records, _ := inv.List(ctx)
		verified := slices.ContainsFunc(records, func(rec drill.Record) bool { return rec.Tag == tag && rec.Verified })
		choice.Reason = fmt.Sprintf("commit %s (%s), already in the inventory", tag, rev)
		return drill.Rollback{Image: img, Choice: choice, Verify: !verified}, true, nil
	}
	dir, err := os.MkdirTemp(r.build.cacheDir, "k-"+tag+"-")
	if err != nil {
		return drill.Rollback{}, false, err
	}
	r.job.cleanup = append(r.job.cleanup, func() { os.RemoveAll(dir) })
	if err := gitrev.Export(ctx, r.build.appDir, commit.SHA, dir); err != nil {
		return drill.Rollback{}, false, err
	}
	r.kjob = r.job.sibling(tag, dir)
	why := "no image other than V has passed a drill yet"
	if asked {
		why = "requested explicitly"
	}
	choice.Reason = fmt.Sprintf("commit %s (%s), built, tested and published in this run and verified before V is deployed: %s", tag, rev, why)
	return drill.Rollback{Choice: choice, Verify: true}, true, nil
}

func (r *drillRun) connect(ctx context.Context) error {
	if err := r.job.connect(ctx); err != nil {
		return err
	}
	for _, sibling := range []*job{r.kjob, r.bjob} {
		if sibling != nil {
			if err := sibling.attach(r.job); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *drillRun) noBadDeploy() string {
	if r.bjob == nil {
		return "the fault is not bad-deploy"
	}
	return ""
}

func (r *drillRun) buildB(ctx context.Context) error { return r.bjob.build(ctx) }

func (r *drillRun) publishB(ctx context.Context) (err error) {
	r.broken, err = r.bjob.publishTo(ctx, r.dest, r.env.Inventory())
	if err == nil {
		fmt.Fprintln(r.stdout, r.broken.Ref)
	}
	return err
}

func (r *drillRun) kNotBuilt() string {
	if r.kjob == nil {
		return "K is not built in this run"
	}
	return ""
}

func (r *drillRun) buildK(ctx context.Context) error { return r.kjob.build(ctx) }

func (r *drillRun) testK(ctx context.Context) error { return r.kjob.test(ctx) }

func (r *drillRun) publishK(ctx context.Context) (err error) {
	r.rollback.Image, err = r.kjob.publishTo(ctx, r.dest, r.env.Inventory())
	if err == nil {
		fmt.Fprintln(r.stdout, r.rollback.Image.Ref)
	}
	return err
}

func orRecreate(rb drill.Rollback) string {
	if rb.Image.Tag == "" {
		return rb.Choice.Tag
	}
	return rb.Image.Tag
}

func (r *drillRun) buildImage(ctx context.Context) error { return r.job.build(ctx) }

func (r *drillRun) testImage(ctx context.Context) error { return r.job.test(ctx) }

func (r *drillRun) publish(ctx context.Context) (err error) {
	r.v, err = r.job.publishTo(ctx, r.dest, r.env.Inventory())
	if err == nil {
		fmt.Fprintln(r.stdout, r.v.Ref)
	}
	return err
}

func (r *drillRun) provision(ctx context.Context) error {
	if err := r.env.Provision(ctx); err != nil {
		return err
	}
	close(r.provisioned)
	return nil
}

// prepare gets K ready on the target (pre-pulled on a host; started and answering behind a
// tunnel of its own locally) while the rest is still built. Best effort: the drill prepares K
// again during the live window, which is then a no-op.
func (r *drillRun) prepare(ctx context.Context) error {
	return r.prepareImage(ctx, r.rollback.Image, "the drill tries again")
}

// prepareV gets V ready as prepare does K, so its deploy needs no pull, and locally is a switch
// to a version already up; the report's deploy steps say what was done ahead. Best effort.
func (r *drillRun) prepareV(ctx context.Context) error {
	return r.prepareImage(ctx, r.v, "the deploy does it all")
}

// prepareImage waits for the target to be up, then prepares img; a failure is a warning.
func (r *drillRun) prepareImage(ctx context.Context, img drill.Image, fallback string) error {
	select {
	case <-r.provisioned:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if err := r.env.Prepare(ctx, img); err != nil {
		r.log.Info(fmt.Sprintf("warning: prepare %s: %v (%s)", img.Tag, err, fallback), "phase", "prepare")
	}
	return nil
}

func (r *drillRun) nothingToPrepare() string {
	switch {
	case r.kjob != nil:
		return "K is built in this run: prepared once it is published"
	case r.rollback.Image.Tag == "":
		return "the rollback re-creates V"
	}
	return ""
}

func (r *drillRun) drill(ctx context.Context) error {
	cfg := r.opts.cfg
	cfg.Image, cfg.Rollback, cfg.Broken = r.v, r.rollback.For(r.v), r.broken
	var err error
	deps := drill.Deps{
		Target:    r.env,
		Prober:    probe.New(cfg.ProbeTimeout),
		Inventory: r.env.Inventory(),
		Log:       r.log,
	}
	if cfg.LoadRPS > 0 {
		deps.Load = load.New(r.loadConfig())
	}
	r.result, err = drill.Run(ctx, cfg, deps)
	return err
}

func (r *drillRun) loadConfig() load.Config {
	return load.Config{RPS: r.opts.cfg.LoadRPS, Clients: r.opts.loadClients, Timeout: max(r.opts.cfg.ProbeTimeout, 2*time.Second)}
}

// nothingCreated skips teardown and report when validation failed: nothing exists yet.
func (r *drillRun) nothingCreated() string {
	if r.env == nil {
		return "nothing was created"
	}
	return ""
}

// teardown releases everything, whatever happened before, with a fresh context, then applies
// retention (keeping V and K); the result records what it did before the report is written.
func (r *drillRun) teardown(ctx context.Context) error {
	if r.result == nil { // a stage before the drill failed: the report still says so
		cfg := r.opts.cfg
		cfg.Image, cfg.Rollback = r.v, r.rollback
		if r.v.Tag != "" {
			cfg.Rollback = r.rollback.For(r.v)
		}
		r.result = drill.Unstarted(r.env.Name(), cfg, r.failure, time.Now())
	}
	limit := r.opts.teardownLimit
	if r.opts.cfg.Fleet.IsFleet() {
		limit = max(limit, fleetTeardownLimit)
	}
	tctx, cancel := teardownContext(ctx, limit)
	defer cancel()
	keep := retention.Policy{KeepVerified: r.opts.keepVerified}
	for _, img := range []drill.Image{r.v, r.rollback.Image} {
		if img.Tag != "" {
			keep.Keep = append(keep.Keep, img.Tag)
		}
	}
	start := time.Now()
	td, err := r.env.Teardown(tctx, keep)
	if err != nil && tctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, context.Cause(tctx))
	}
	r.result.RecordTeardown(start, time.Now(), td, err)
	e := r.result.Expectations[len(r.result.Expectations)-1]
	verdict := map[drill.Status]string{drill.Passed: "passed", drill.Failed: "FAILED"}[e.Status]
	defer r.log.Info(fmt.Sprintf("%s: %s: %s", verdict, e.Name, e.Message), "phase", "teardown")
	for _, s := range td.Steps { // the verdict below carries a failure; the steps are detail
		r.log.Debug(fmt.Sprintf("step %s took %s", s.Name, s.Took.Round(time.Millisecond)), "phase", "teardown", "error", s.Error)
	}
	if td.Retention != "" {
		r.log.Info("retention: "+td.Retention, "phase", "teardown")
	}
	if len(td.Left) > 0 {
		r.log.Info("may be left: "+strings.Join(td.Left, "; "), "phase", "teardown")
		if td.Sweep != "" {
			r.log.Info("remove it with: "+td.Sweep, "phase", "teardown")
		}
	}
	return err
}

// report writes every report file, after teardown so it says what teardown did, and appends
// the summary to GitHub's job summary when the run is in GitHub Actions.
func (r *drillRun) report(context.Context) error {
	paths, err := report.Write(r.opts.reportDir, r.result, report.Options{
		StepSummary: os.Getenv("GITHUB_STEP_SUMMARY"), Assessment: r.assessment,
	})
	for _, p := range paths {
		fmt.Fprintln(r.stdout, p)
	}
	return err
}

func (r *drillRun) noHistory() string {
	switch {
	case r.env == nil:
		return "nothing was created"
	case r.history == nil:
		return "--history off"
	}
	return ""
}

// recordHistory appends this drill to the history, passed or failed, after holding it to the
// budget and the gates against the earlier drills. A history it cannot read is an error: it is
// never dropped or overwritten.
func (r *drillRun) recordHistory(ctx context.Context) error {
	hctx, cancel := teardownContext(ctx, time.Minute) // an interrupted drill is recorded too
	defer cancel()
	previous, err := r.history.List(hctx)
	if err != nil {
		return fmt.Errorf("read the drill history: %w", err)
	}
	rec := record(r.result, r.runID(), filepath.Join(r.opts.reportDir, report.JSONFile))
	r.assessment = r.hist.assess(rec, previous)
	switch {
	case errors.Is(context.Cause(ctx), errInterrupted):
		rec.ExitStatus = 130
	case r.failure != nil || !r.result.Passed() || !r.assessment.Passed():
		rec.ExitStatus = 1
	}
	rec.Passed = rec.ExitStatus == 0
	if r.assessment.Trend != "" {
		r.log.Info(r.assessment.Trend, "phase", "history")
	}
	if r.assessment.Budget != "" {
		r.log.Info("error budget: "+r.assessment.Budget, "phase", "history")
	}
	for _, g := range r.assessment.Gates {
		verdict := "passed"
		if !g.Passed {
			verdict = "FAILED"
		}
		r.log.Info(fmt.Sprintf("%s: gate %s: %s", verdict, g.Name, g.Message), "phase", "history")
	}
	if err := r.history.Append(hctx, rec); err != nil {
		return fmt.Errorf("record the drill in the history: %w", err)
	}
	return nil
}
