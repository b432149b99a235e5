package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/teardown"
)

// sweepCommand removes what killed runs left in AWS: `go run ./ci sweep`.
func sweepCommand() command {
	return command{
		name:    "sweep",
		summary: "remove AWS resources deploydrill created (all runs, one run, or old ones)",
		run:     runSweep,
	}
}

const sweepHelp = `Finds every EC2 instance, security group, key pair and volume tagged
deploydrill:created-by=deploydrill, and the ECR repository when a run created it
as ephemeral, and removes them in dependency order (instances first): the same
steps a run's teardown takes. Nothing without the tool's tags is touched, whatever
its name. Without --run-id, --older-than or --expired it removes those of every
run, including runs still in progress. It prints each resource removed on stdout
and exits non-zero when anything remains (or, with --dry-run, when anything was
found). Credentials and region come from the AWS SDK's usual chain;
AWS_ENDPOINT_URL points it at any AWS-compatible endpoint.`

func runSweep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("sweep", sweepHelp, stderr)
	var (
		o                        awsOptions
		runID                    string
		olderThan, timeout       time.Duration
		expired, dryRun, verbose bool
	)
	o.registerAccount(f)
	f.String(&runID, "run-id", "DRILL_RUN_ID", "", "only the resources of this run")
	f.Duration(&olderThan, "older-than", "", 0, "only resources created longer ago than this, e.g. 2h")
	f.Bool(&expired, "expired", "", false, "only resources past their deploydrill:expires-at tag")
	f.Bool(&dryRun, "dry-run", "", false, "list what would be removed and remove nothing")
	f.Duration(&timeout, "timeout", "DRILL_SWEEP_TIMEOUT", 20*time.Minute, "give up after this long (a security group can stay in use for minutes)")
	f.Bool(&verbose, "verbose", "DRILL_VERBOSE", false, "show debug lines")
	if err := f.parse(args); err != nil {
		return err
	}
	if olderThan < 0 {
		return usageError("sweep: --older-than %s: must not be negative", olderThan)
	}
	if runID != "" {
		if err := runtag.CheckID(runID); err != nil {
			return usageError("sweep: --run-id: %v", err)
		}
	}
	sel := runtag.Selector{RunID: runID, OlderThan: olderThan, Expired: expired, Now: time.Now()}
	log := newLogger(stderr, verbose).With("phase", "sweep")

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := o.load(ctx)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	log.Info("looking for resources of "+sel.String(), "region", cfg.Region)
	plan := teardown.Plan{
		Hosts:        ec2.NewFromConfig(cfg, ec2.Options{Log: log}),
		Repositories: []*ecr.Repository{ecr.NewFromConfig(cfg, o.repository)},
		Balancers:    elbv2.NewFromConfig(cfg, elbv2.Options{Log: log}), // a fleet's load balancer goes first
		Log:          log,
	}
	res, err := plan.Sweep(ctx, sel, dryRun)
	verb, list := "removed", res.Removed
	if dryRun {
		verb, list = "would remove", res.Found
	}
	for _, r := range list {
		fmt.Fprintf(stdout, "%s %s\n", verb, r)
	}
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	switch {
	case len(res.Remaining) == 0:
		log.Info("nothing of "+sel.String()+" remains", "region", cfg.Region)
		return nil
	case dryRun:
		return fmt.Errorf("sweep: dry run: %d resources of %s would be removed", len(res.Remaining), sel)
	}
	left := make([]string, len(res.Remaining))
	for i, r := range res.Remaining {
		left[i] = r.String()
	}
	return fmt.Errorf("sweep: %d resources remain (run sweep again; a security group can stay in use for minutes):\n  %s",
		len(res.Remaining), strings.Join(left, "\n  "))
}
