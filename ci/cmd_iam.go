package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/deploydrill/deploydrill/infra/awsconfig"
	"github.com/deploydrill/deploydrill/infra/iam"
)

// iamCommand prints the policies of the role GitHub Actions assumes: `go run ./ci iam`.
func iamCommand() command {
	return command{
		name:    "iam",
		summary: "print the IAM trust and permissions policies of the role the drill runs as",
		run:     runIAM,
	}
}

const iamHelp = `Prints the two policies of the IAM role that GitHub Actions assumes through
OIDC to run the drill on AWS (no stored keys), ready to paste into the console
or to save one at a time with --trust or --permissions:

  trust        only GitHub's OIDC provider in --account, only tokens for STS,
               only --repo on --branch (default main) or in --environment,
               matched exactly, never a wildcard
  permissions  what the drill does and nothing else: EC2 calls that create
               resources only with the tag deploydrill:created-by=deploydrill,
               changes and deletes only on resources carrying it, ECR only on
               --repository, all in --account and (when given) --region;
               with --history s3://BUCKET/PREFIX, S3 for the drill history:
               s3:PutObject and s3:GetObject on the objects under PREFIX/,
               s3:ListBucket on BUCKET for the prefix PREFIX/ alone, and never a
               delete (the history is append-only)

Give --history as the drill gets it when the drills keep their history in S3.
Only an S3 history needs permissions: without --history the policy allows no
S3 call at all, as a history file needs none (DRILL_HISTORY set to a file path
or to off is read the same way; --history itself takes only s3://).

The subject is case-sensitive: spell --repo, --branch and --environment as
GitHub does. Repositories created or renamed since 15 July 2026 (and older ones
that opted in) carry numeric ids in the subject; pass --repo as GitHub reports it:
  gh api repos/OWNER/REPO/actions/oidc/customization/sub --jq .sub_claim_prefix
The README's "Run it on AWS" creates the OIDC provider and the role step by step.`

func runIAM(_ context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("iam", iamHelp, stderr)
	var (
		role        iam.Role
		history     string
		trustOnly   bool
		permsOnly   bool
		branchGiven bool
	)
	f.String(&role.Account, "account", "DRILL_AWS_ACCOUNT", "", "12-digit AWS account id that owns the role, the OIDC provider and the drill's resources (required)")
	f.String(&role.Repo, "repo", "GITHUB_REPOSITORY", "", "GitHub repository whose workflow may assume the role: OWNER/REPO, or OWNER@OWNER_ID/REPO@REPO_ID when its OIDC subject carries ids (required)")
	f.String(&role.Branch, "branch", "", iam.DefaultBranch, "branch whose workflow runs may assume the role; refs/heads/ may be included")
	f.String(&role.Environment, "environment", "", "", "instead of --branch: the GitHub environment the drill job declares (environment: NAME)")
	f.String(&role.Region, "region", "DRILL_AWS_REGION", "", "the only AWS region the role may act in (default: every region of the aws partition)")
	f.String(&role.Repository, "repository", "DRILL_REPOSITORY", iam.DefaultRepository, "the ECR repository the drill pushes to, as given to the drill's --repository")
	f.String(&history, "history", "DRILL_HISTORY", "", "the drill history's S3 location, s3://BUCKET/PREFIX, as given to the drill's --history: the role may write, read and list records there only (default: no S3 permissions, for a history kept in a file)")
	f.Bool(&trustOnly, "trust", "", false, "print only the trust policy (e.g. > trust.json)")
	f.Bool(&permsOnly, "permissions", "", false, "print only the permissions policy (e.g. > permissions.json)")
	if err := f.parse(args); err != nil {
		return err
	}
	branchGiven = f.onCommandLine("branch")
	if role.Environment != "" && !branchGiven {
		role.Branch = "" // the token names the environment, not the branch
	}
	if role.Repository == "" {
		role.Repository = iam.DefaultRepository
	}
	switch {
	case role.Account == "":
		return fmt.Errorf("iam: --account is required: the 12-digit id of the AWS account the drill runs in: %w", errUsage)
	case role.Repo == "":
		return fmt.Errorf("iam: --repo is required: the GitHub repository as OWNER/REPO: %w", errUsage)
	}
	if role.Region != "" {
		if err := awsconfig.CheckRegion(role.Region); err != nil {
			return fmt.Errorf("iam: --region: %w: %w", err, errUsage)
		}
	}
	// DRILL_HISTORY is the drill's own setting too, where a file path or off is as valid:
	// from there such a value means no S3; given as --history it is a mistake.
	historyGiven := f.onCommandLine("history")
	switch {
	case strings.HasPrefix(history, "s3://"):
		location, err := iam.ParseS3Location(history)
		if err != nil {
			source := "--history"
			if !historyGiven {
				source = "DRILL_HISTORY"
			}
			return fmt.Errorf("iam: %s: %w: %w", source, err, errUsage)
		}
		role.History = location
	case historyGiven:
		return fmt.Errorf("iam: --history %q: only a history in S3 (s3://BUCKET/PREFIX) needs permissions; leave --history out for a history file: %w", history, errUsage)
	}
	trust, err := role.Trust()
	if err != nil {
		return fmt.Errorf("%w: %w", err, errUsage)
	}
	permissions, err := role.Permissions()
	if err != nil {
		return fmt.Errorf("%w: %w", err, errUsage)
	}

	subject, _ := role.Subject()
	region := role.Region
	if region == "" {
		region = "every region (pass --region to pin one)"
	}
	log := newLogger(stderr, false).With("phase", "iam")
	log.Info(fmt.Sprintf("trust admits %s through %s", subject, role.OIDCProviderARN()))
	log.Info(fmt.Sprintf("permissions in account %s, %s, ECR repository %s", role.Account, region, role.Repository))
	if role.History.Bucket != "" {
		log.Info(fmt.Sprintf("history in %s: write, read and list records there, never delete", role.History))
	} else {
		log.Info("no S3 permissions: a history kept in a file needs none (pass --history s3://BUCKET/PREFIX for one in S3)")
	}

	switch {
	case trustOnly && !permsOnly:
		_, err = stdout.Write(trust)
	case permsOnly && !trustOnly:
		_, err = stdout.Write(permissions)
	default:
		_, err = fmt.Fprintf(stdout, "# trust policy: who may assume the role (aws iam create-role --assume-role-policy-document file://trust.json)\n%s\n"+
			"# permissions policy: what the role may do (aws iam put-role-policy --policy-document file://permissions.json)\n%s",
			trust, permissions)
	}
	return err
}
