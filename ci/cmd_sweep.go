package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/infra/awsconfig"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
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
as ephemeral, and removes them in dependency order (instances first). Without
--run-id, --older-than or --expired it removes those of every run, including
runs still in progress. It prints each resource removed on stdout and exits
non-zero when anything remains (or, with --dry-run, when anything was found).
Credentials and region come from the AWS SDK's usual chain; AWS_ENDPOINT_URL
points it at any AWS-compatible endpoint.`

func runSweep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sweep", sweepHelp, stderr)
	var (
		region     = fs.String("region", "", "AWS region (default: AWS_REGION, else the profile's region)")
		profile    = fs.String("profile", "", "shared config profile (default: AWS_PROFILE, else default)")
		repository = fs.String("repository", ecr.DefaultRepository, "ECR repository to check for an ephemeral repository a run left")
		runID      = fs.String("run-id", "", "only the resources of this run")
		olderThan  = fs.Duration("older-than", 0, "only resources created longer ago than this, e.g. 2h")
		expired    = fs.Bool("expired", false, "only resources past their deploydrill:expires-at tag")
		dryRun     = fs.Bool("dry-run", false, "list what would be removed and remove nothing")
		timeout    = fs.Duration("timeout", 20*time.Minute, "give up after this long (a security group can stay in use for minutes)")
	)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *olderThan < 0 {
		return fmt.Errorf("sweep: --older-than %s: must not be negative: %w", *olderThan, errUsage)
	}
	sel := runtag.Selector{RunID: *runID, OlderThan: *olderThan, Expired: *expired, Now: time.Now()}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Region: *region, Profile: *profile})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	s := teardown.Sweeper{
		Hosts:        ec2.NewFromConfig(cfg, ec2.Options{Logf: progress}),
		Repositories: []*ecr.Repository{ecr.NewFromConfig(cfg, *repository)},
		Out:          stdout,
		Progress:     stderr,
	}
	res, err := s.Sweep(ctx, sel, *dryRun)
	if err != nil {
		return err
	}
	switch {
	case len(res.Remaining) == 0:
		fmt.Fprintf(stderr, "sweep: nothing of %s remains in %s\n", sel, cfg.Region)
		return nil
	case *dryRun:
		return fmt.Errorf("sweep: dry run: %d resources of %s would be removed", len(res.Remaining), sel)
	}
	return fmt.Errorf("sweep: %d resources remain (run sweep again; a security group can stay in use for minutes):\n  %s",
		len(res.Remaining), strings.Join(res.Remaining, "\n  "))
}
