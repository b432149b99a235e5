// Package awsconfig loads the AWS SDK configuration through its normal chain (environment,
// shared profiles, SSO, web identity, instance metadata) and refuses bad input with a clear
// error before anything is created: no or unknown region, no credentials, a malformed CIDR.
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Options come from flags; empty fields fall through to the SDK's chain.
type Options struct {
	Region  string // --region; else AWS_REGION / AWS_DEFAULT_REGION, else the profile's region
	Profile string // --profile; else AWS_PROFILE, else "default"
	// CredentialTimeout bounds the credential check: instance metadata and SSO can be slow to
	// fail on a laptop. Default 15s.
	CredentialTimeout time.Duration
}

// localHint closes every credential error: the local target needs no AWS at all.
const localHint = "the local target (--target local) needs no AWS account or credentials"

// Load returns a checked configuration. AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) are
// honoured by the SDK itself, so any AWS-compatible endpoint works; the region must still be
// one AWS knows (the SDK resolves names, signing and ARNs from it), endpoint or not.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config: %w", err)
	}
	if err := CheckRegion(cfg.Region); err != nil {
		return aws.Config{}, err
	}
	if err := CheckCredentials(ctx, cfg, o.CredentialTimeout); err != nil {
		return aws.Config{}, err
	}
	return cfg, nil
}

var regionShape = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// ErrInvalidRegion marks a region CheckRegion refused: missing, malformed or unknown.
var ErrInvalidRegion = errors.New("invalid aws region")

// CheckRegion refuses a missing region and one AWS does not know, suggesting the nearest
// known name, endpoint override or not. It makes no network call; its errors wrap
// ErrInvalidRegion.
func CheckRegion(region string) error {
	switch {
	case region == "":
		return regionError{errors.New("aws region: not set: pass --region, set AWS_REGION, or give the profile a region")}
	case !regionShape.MatchString(region):
		return regionError{fmt.Errorf("aws region %q: not a region name (like eu-west-1)%s", region, suggest(region))}
	case !slices.Contains(knownRegions, region):
		return regionError{fmt.Errorf("aws region %q: unknown%s", region, suggest(region))}
	}
	return nil
}

type regionError struct{ err error }

func (e regionError) Error() string        { return e.err.Error() }
func (e regionError) Is(target error) bool { return target == ErrInvalidRegion }

func suggest(region string) string {
	best, bestDist := "", 4
	for _, r := range knownRegions {
		if d := distance(region, r); d < bestDist {
			best, bestDist = r, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// CheckCredentials resolves the credential chain once, so a missing login fails here rather
// than halfway through a launch.
func CheckCredentials(ctx context.Context, cfg aws.Config, timeout time.Duration) error {
	if cfg.Credentials == nil {
		return fmt.Errorf("aws credentials: none configured; %s", localHint)
	}
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("aws credentials: none found (environment, shared profiles, SSO, web identity, instance metadata): %w; %s", err, localHint)
	}
	if !creds.HasKeys() {
		return fmt.Errorf("aws credentials: the chain returned empty keys; %s", localHint)
	}
	return nil
}

// ParseCIDR parses a --*-cidr flag: an address block with no host bits set.
func ParseCIDR(flag, value string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(value)
	if err != nil {
		if a, aerr := netip.ParseAddr(value); aerr == nil {
			return netip.Prefix{}, fmt.Errorf("--%s %q: malformed CIDR: missing the prefix length; did you mean %s/%d?", flag, value, a, a.BitLen())
		}
		return netip.Prefix{}, fmt.Errorf("--%s %q: malformed CIDR: want an address block like 203.0.113.7/32", flag, value)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("--%s %q: malformed CIDR: host bits set; did you mean %s?", flag, value, p.Masked())
	}
	return p, nil
}
