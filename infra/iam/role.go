package iam

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Role describes the IAM role a GitHub Actions workflow assumes to run the drill: who may
// assume it (Trust) and what it may do (Permissions).
type Role struct {
	Account string // the 12-digit AWS account that owns the role, the OIDC provider and the resources
	// Repo is the GitHub repository as OWNER/REPO, or OWNER@OWNER_ID/REPO@REPO_ID for
	// repositories whose OIDC subject carries the immutable numeric ids (an optional "repo:"
	// prefix is accepted, so GitHub's sub_claim_prefix can be pasted as it is).
	Repo string
	// Branch the workflow runs on (default main), or Environment when the job declares one:
	// GitHub puts exactly one of them in the token's subject.
	Branch      string
	Environment string
	Region      string // the only region the drill may act in; empty allows every commercial region
	Repository  string // the ECR repository; default DefaultRepository
	// History is where the drill keeps its history when that is S3 (ParseS3Location reads
	// the drill's --history s3://BUCKET/PREFIX). The zero value, for a history kept in a file
	// or none, leaves S3 out of the permissions altogether.
	History S3Location
}

// DefaultBranch is the branch trusted when neither a branch nor an environment is given.
const DefaultBranch = "main"

var (
	accountPattern     = regexp.MustCompile(`^[0-9]{12}$`)
	ownerPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,38}$`)
	repoNamePattern    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	githubIDPattern    = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
	regionPattern      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	repositoryPattern  = regexp.MustCompile(`^[a-z0-9]+(?:[._/-][a-z0-9]+)*$`)
	environmentPattern = regexp.MustCompile(`^[^*?:"\\\x00-\x1f\x7f]{1,255}$`)
)

// Validate refuses anything that would widen the trust or the permissions (wildcards, a
// partial account id) or that GitHub or AWS would never match, before a document is rendered.
func (r Role) Validate() error {
	var errs []error
	if !accountPattern.MatchString(r.Account) {
		errs = append(errs, fmt.Errorf("account %q: want the 12-digit AWS account id, e.g. 123456789012", r.Account))
	}
	if _, err := r.subjectPrefix(); err != nil {
		errs = append(errs, err)
	}
	if _, err := r.subjectContext(); err != nil {
		errs = append(errs, err)
	}
	if err := checkRegion(r.Region); err != nil {
		errs = append(errs, err)
	}
	if name := r.repository(); len(name) > 256 || !repositoryPattern.MatchString(name) {
		errs = append(errs, fmt.Errorf("repository %q: not an ECR repository name (lowercase letters, digits and . _ - /)", name))
	}
	if r.History != (S3Location{}) {
		if err := r.History.validate(); err != nil {
			errs = append(errs, fmt.Errorf("history %s: %w", r.History, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("iam role: %w", err)
	}
	return nil
}

// Subject is the OIDC token's sub claim the trust policy requires, e.g.
// repo:octo-org/octo-repo:ref:refs/heads/main or repo:octo-org/octo-repo:environment:prod.
func (r Role) Subject() (string, error) {
	if err := r.Validate(); err != nil {
		return "", err
	}
	prefix, _ := r.subjectPrefix()
	scope, _ := r.subjectContext()
	return prefix + ":" + scope, nil
}

// subjectPrefix is "repo:OWNER/REPO" (or its immutable-id form), checked part by part.
func (r Role) subjectPrefix() (string, error) {
	full := strings.TrimPrefix(r.Repo, "repo:")
	owner, repo, ok := strings.Cut(full, "/")
	if !ok || strings.Contains(repo, "/") {
		return "", fmt.Errorf("repo %q: want OWNER/REPO (or OWNER@OWNER_ID/REPO@REPO_ID)", r.Repo)
	}
	ownerName, ownerID, ownerHasID := strings.Cut(owner, "@")
	repoName, repoID, repoHasID := strings.Cut(repo, "@")
	switch {
	case !ownerPattern.MatchString(ownerName):
		return "", fmt.Errorf("repo %q: owner %q is not a GitHub user or organization name", r.Repo, ownerName)
	case !repoNamePattern.MatchString(repoName) || repoName == "." || repoName == "..":
		return "", fmt.Errorf("repo %q: %q is not a GitHub repository name", r.Repo, repoName)
	case ownerHasID != repoHasID:
		return "", fmt.Errorf("repo %q: give the numeric ids of both the owner and the repository, or neither", r.Repo)
	case ownerHasID && (!githubIDPattern.MatchString(ownerID) || !githubIDPattern.MatchString(repoID)):
		return "", fmt.Errorf("repo %q: the ids after @ must be GitHub's numeric owner and repository ids", r.Repo)
	}
	return "repo:" + full, nil
}

// subjectContext is "ref:refs/heads/BRANCH" or "environment:NAME".
func (r Role) subjectContext() (string, error) {
	switch {
	case r.Branch != "" && r.Environment != "":
		return "", fmt.Errorf("branch %q and environment %q: give one; a job with an environment gets the environment in its token, not the branch", r.Branch, r.Environment)
	case r.Environment != "":
		if !environmentPattern.MatchString(r.Environment) || strings.TrimSpace(r.Environment) != r.Environment {
			return "", fmt.Errorf("environment %q: not a GitHub environment name (no wildcards, colons, quotes or control characters; at most 255 characters)", r.Environment)
		}
		return "environment:" + r.Environment, nil
	}
	branch := strings.TrimPrefix(r.Branch, "refs/heads/")
	if branch == "" {
		branch = DefaultBranch
	}
	if !validBranch(branch) {
		return "", fmt.Errorf("branch %q: not a git branch name (no wildcards, spaces or ~^:?*[\\)", r.Branch)
	}
	if strings.HasPrefix(branch, "refs/") {
		return "", fmt.Errorf("branch %q: only branches (refs/heads/...) can be trusted here", r.Branch)
	}
	return "ref:refs/heads/" + branch, nil
}

// validBranch follows git check-ref-format, which also rules out IAM's wildcards * and ?.
func validBranch(b string) bool {
	if b == "" || len(b) > 255 || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock") || b == "@" ||
		strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{") || strings.Contains(b, "/.") ||
		strings.HasPrefix(b, ".") {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f || strings.ContainsRune(`~^:?*[\"`, c) {
			return false
		}
	}
	return true
}

// checkRegion accepts a commercial-partition region name or "" (every region). Regions of
// other partitions (China, GovCloud, ISO) need other ARNs and another STS audience.
func checkRegion(region string) error {
	switch {
	case region == "":
		return nil
	case !regionPattern.MatchString(region):
		return fmt.Errorf("region %q: not a region name like eu-west-1", region)
	case strings.HasPrefix(region, "cn-") || strings.HasPrefix(region, "us-gov-") || strings.Contains(region, "-iso"):
		return fmt.Errorf("region %q: outside the aws partition; these policies are written for the commercial regions", region)
	}
	return nil
}

func (r Role) repository() string {
	if r.Repository == "" {
		return DefaultRepository
	}
	return r.Repository
}
