// Package teardown removes what drill runs created, for one run's teardown and for sweep alike:
// one ordered list of named, idempotent steps (find → delete listeners → load balancers →
// target groups → terminate instances → wait until they are terminated → delete security
// groups → key pairs → detached volumes → ephemeral repositories; the load balancer steps only
// with an ELBv2 client), built from a selection and run to the end whatever the earlier steps did,
// with the errors collected per step so none hides another. A dry run goes through the same
// steps and lists what they would remove (cloud-nuke's model: find, then nuke).
//
// Only what carries the tool's tags for the selection, or what the run's ledger (the
// *ec2.Host LaunchHost returned, the *elbv2.Balancer CreateFleetBalancer returned) says the run
// created, is ever deleted: never a resource found by name alone.
package teardown

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/steps"
)

// Step is one named step (infra/steps'). Teardown steps are idempotent: what is already gone
// counts as done.
type Step = steps.Step

// StepResult is what one step did.
type StepResult struct {
	Name string
	Took time.Duration
	Err  error // nil when it succeeded
}

// RunSteps runs every step in order, whatever the earlier ones did, and logs one line per step.
// Once ctx has ended the remaining steps are not called (no further API calls): each is
// recorded as not run, with the context's error.
func RunSteps(ctx context.Context, log *slog.Logger, steps []Step) []StepResult {
	log = orDiscard(log)
	out := make([]StepResult, 0, len(steps))
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			log.Warn(s.Name+" not run", "error", err.Error())
			out = append(out, StepResult{Name: s.Name, Err: fmt.Errorf("not run: %w", err)})
			continue
		}
		start := time.Now()
		err := s.Run(ctx)
		took := time.Since(start)
		if err != nil {
			log.Warn(s.Name+" failed", "took", took, "error", err.Error())
		} else {
			log.Info(s.Name, "took", took)
		}
		out = append(out, StepResult{Name: s.Name, Took: took, Err: err})
	}
	return out
}

// Errors joins the failed steps' errors, each prefixed with its step's name; nil when all passed.
func Errors(steps []StepResult) error {
	var errs []error
	for _, s := range steps {
		if s.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, s.Err))
		}
	}
	return errors.Join(errs...)
}

// FreshContext is the context for a deferred teardown: it keeps the run context's values but
// not its cancellation (the run may have been interrupted), with its own deadline.
func FreshContext(run context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(run), timeout)
}

// Selection says what to remove.
type Selection struct {
	// Selector picks resources by the tool's tags: the run's id for a teardown, the sweep's
	// filter for a sweep.
	Selector runtag.Selector
	// Ledger is what the run's LaunchHost recorded (teardown only; nil for a sweep): what the
	// run created, known even when a listing cannot see it yet or cannot be made at all.
	Ledger *ec2.Host
	// Fleet are the ledgers of a fleet's further hosts, like Ledger.
	Fleet []*ec2.Host
	// Groups is what the run's CreateFleetGroups recorded (the zero value for none).
	Groups ec2.FleetGroups
	// Balancer is what the run's CreateFleetBalancer recorded (nil for none, and for a sweep).
	// Removing it needs a plan with Balancers.
	Balancer *elbv2.Balancer
}

// hosts are the host ledgers, Ledger first.
func (s Selection) hosts() []*ec2.Host {
	var out []*ec2.Host
	for _, h := range append([]*ec2.Host{s.Ledger}, s.Fleet...) {
		if h != nil {
			out = append(out, h)
		}
	}
	return out
}

// ForRun selects one run's resources: its ledger (nil when LaunchHost never ran) and
// everything tagged with its id.
func ForRun(runID string, ledger *ec2.Host) Selection {
	return Selection{Selector: runtag.Selector{RunID: runID}, Ledger: ledger}
}

// Plan removes what a selection picks. Log receives one line per step and per resource
// (nil discards them).
type Plan struct {
	Hosts *ec2.Hosts
	// Balancers removes the drill's load balancers, listeners and target groups (found by
	// their tags, and from Selection.Balancer), before the instances. Nil: a plan without
	// load balancer steps, as for single-host runs.
	Balancers *elbv2.Balancers
	// Repositories are checked for ephemeral repositories the tool created (tagged
	// deploydrill:ephemeral=true), which are deleted; persistent ones hold the inventory of
	// verified images and are kept.
	Repositories []*ecr.Repository
	Log          *slog.Logger
}

// KindRepository is the kind of an ephemeral ECR repository; it goes last.
const KindRepository = "repository"

// Resource is one resource a plan found or knew of: infra/ec2's, which also names
// repositories (KindRepository) and infra/elbv2's (their ARN as the ID).
type Resource = ec2.Resource

func key(r Resource) string { return r.Kind + "/" + cmp.Or(r.ID, "name:"+r.Name) }

// Result is what a plan did.
type Result struct {
	DryRun  bool
	Steps   []StepResult
	Found   []Resource // what the ledger knew and the listings found, in deletion order
	Removed []Resource // confirmed gone, in the order they went
	Kept    []string   // what was found and deliberately kept (persistent repositories)
	// Remaining is what may be left: for Remove, Found less Removed (no further API call);
	// for Sweep, what looking again still found.
	Remaining []Resource
}

// Err joins the failed steps' errors; nil when every step succeeded.
func (r Result) Err() error { return Errors(r.Steps) }

// Remove runs the steps for sel (with dry, lists what they would remove and removes nothing)
// and says what may remain without looking again: Found less Removed. It is what a run's
// teardown uses; when ctx ends part way, the steps not yet run are skipped and Remaining
// still names everything the ledger and the listings knew.
func (p Plan) Remove(ctx context.Context, sel Selection, dry bool) Result {
	j := p.newJob(sel, dry)
	j.res.Steps = RunSteps(ctx, p.Log, j.steps())
	j.res.Remaining = j.left()
	return *j.res
}

// Sweep removes (with dry, lists) every resource of the tool that sel picks, in dependency
// order, then looks again: Remaining is what is still there (with dry, everything found). The
// error joins the failures of the steps and of the second look.
func (p Plan) Sweep(ctx context.Context, sel runtag.Selector, dry bool) (Result, error) {
	res := p.Remove(ctx, Selection{Selector: sel}, dry)
	err := res.Err()
	if dry || ctx.Err() != nil {
		return res, err
	}
	again := p.newJob(Selection{Selector: sel}, true)
	again.quiet = true
	if lerr := again.find(ctx); lerr != nil {
		return res, errors.Join(err, fmt.Errorf("look again: %w", lerr))
	}
	res.Remaining = again.res.Found
	return res, err
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
