package iam

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/template"
)

// trust.json is the GitHub OIDC trust policy with {{.Account}} and {{.Subject}} inside its
// strings, so the template is itself valid JSON.
//
//go:embed trust.json
var trustTemplate string

var trustTmpl = template.Must(template.New("trust.json").Option("missingkey=error").Parse(trustTemplate))

// GitHub's OIDC issuer and the audience aws-actions/configure-aws-credentials asks for.
const (
	OIDCProviderHost = "token.actions.githubusercontent.com"
	OIDCAudience     = "sts.amazonaws.com"
)

// Trust renders the role's trust policy: only GitHub's OIDC provider in this account, only
// tokens minted for STS, and only for this repository's branch or environment, matched
// exactly (StringEquals, never a wildcard).
func (r Role) Trust() ([]byte, error) {
	sub, err := r.Subject()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	// Validation already rules out quotes and backslashes; escaping keeps the JSON intact
	// should a check ever loosen.
	data := map[string]string{"Account": jsonEscape(r.Account), "Subject": jsonEscape(sub)}
	if err := trustTmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("iam trust policy: %w", err)
	}
	if !json.Valid(b.Bytes()) {
		return nil, fmt.Errorf("iam trust policy: rendered invalid JSON for subject %q", sub)
	}
	return b.Bytes(), nil
}

// OIDCProviderARN is the provider the trust policy names, created once per account.
func (r Role) OIDCProviderARN() string {
	return "arn:aws:iam::" + r.Account + ":oidc-provider/" + OIDCProviderHost
}

// Permissions renders policy.json for the role: every ARN pinned to the role's account, to
// its region when one is given (calls with no resource ARN get an aws:RequestedRegion
// condition instead), ECR to the role's repository, and S3 to the role's history location;
// without one (a history kept in a file) the policy allows no S3 call at all.
func (r Role) Permissions() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return render(scope{account: r.Account, region: r.Region, repository: r.repository(), history: r.History})
}

// scope is what render pins policy.json's wildcards to; "" leaves a field as stored. The
// history statements (those of S3) are rendered for history, and dropped when it is zero.
type scope struct {
	account, region, repository string
	history                     S3Location
}

// storedHistory is the location policy.json's history statements are written for.
var storedHistory = S3Location{Bucket: StoredHistoryBucket, Prefix: StoredHistoryPrefix}

func render(sc scope) ([]byte, error) {
	p, err := Load()
	if err != nil {
		return nil, err
	}
	kept := p.Statement[:0]
	for _, s := range p.Statement {
		if isHistory(s) {
			if sc.history.Bucket == "" {
				continue
			}
			if err := s.renderHistory(sc.history); err != nil {
				return nil, err
			}
		}
		for j := range s.Resource {
			s.Resource[j] = sc.arn(s.Resource[j])
		}
		if sc.region != "" && slices.Contains(s.Resource, "*") {
			s.setCondition("StringEquals", "aws:RequestedRegion", sc.region)
		}
		kept = append(kept, s)
	}
	p.Statement = kept
	return p.Marshal()
}

// isHistory reports whether a statement is one of the history's: S3 serves nothing else.
func isHistory(s Statement) bool {
	return len(s.Action) > 0 && !slices.ContainsFunc(s.Action, func(a string) bool { return !strings.HasPrefix(a, "s3:") })
}

// renderHistory moves a history statement from storedHistory to h: the bucket, the objects
// under the prefix, and the s3:prefix the listing is confined to (none when h is a whole
// bucket, whose listing sends no prefix).
func (s *Statement) renderHistory(h S3Location) error {
	for j, r := range s.Resource {
		switch r {
		case storedHistory.BucketARN():
			s.Resource[j] = h.BucketARN()
		case storedHistory.ObjectsARN():
			s.Resource[j] = h.ObjectsARN()
		default:
			return fmt.Errorf("iam policy: statement %s: resource %s is not the history's bucket or objects in policy.json", s.Sid, r)
		}
	}
	for operator, byKey := range s.Condition {
		for key := range byKey {
			if key != "s3:prefix" {
				return fmt.Errorf("iam policy: statement %s: condition %s %s is not one the history's renderer knows", s.Sid, operator, key)
			}
			if got := s.ConditionValues(operator, key); !slices.Equal(got, []string{storedHistory.ListPrefix()}) {
				return fmt.Errorf("iam policy: statement %s: s3:prefix %v, want %q in policy.json", s.Sid, got, storedHistory.ListPrefix())
			}
			if h.Prefix == "" {
				delete(byKey, key)
			} else {
				s.setCondition(operator, key, h.ListPrefix())
			}
		}
		if len(byKey) == 0 {
			delete(s.Condition, operator)
		}
	}
	if len(s.Condition) == 0 {
		s.Condition = nil
	}
	return nil
}

// arn pins one Resource: the region and account segments stored as "*" (public AMIs and
// SSM parameters have an empty account and keep it), and an ECR repository's name.
func (sc scope) arn(resource string) string {
	seg := strings.SplitN(resource, ":", 6)
	if len(seg) != 6 || seg[0] != "arn" {
		return resource
	}
	if seg[3] == "*" && sc.region != "" {
		seg[3] = sc.region
	}
	if seg[4] == "*" && sc.account != "" {
		seg[4] = sc.account
	}
	if seg[2] == "ecr" && strings.HasPrefix(seg[5], "repository/") && sc.repository != "" {
		seg[5] = "repository/" + sc.repository
	}
	return strings.Join(seg, ":")
}

func (s *Statement) setCondition(operator, key, value string) {
	if s.Condition == nil {
		s.Condition = map[string]map[string]json.RawMessage{}
	}
	if s.Condition[operator] == nil {
		s.Condition[operator] = map[string]json.RawMessage{}
	}
	v, _ := json.Marshal(value)
	s.Condition[operator][key] = v
}

// Marshal writes the policy as indented JSON, keys in a stable order.
func (p Policy) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("iam policy: %w", err)
	}
	return append(b, '\n'), nil
}

// jsonEscape is s as the inside of a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
