// Package iam holds the IAM role the AWS target runs as. policy.json is the least-privilege
// permissions policy: create calls only with this tool's request tag, changes and deletes only
// on resources carrying it (a listener is created on a load balancer, so it needs that one's
// tag), tags only at creation, ECR only on the drill's repository, S3 only on the drill
// history's prefix, without deletes (the history is append-only). trust.json lets GitHub
// Actions assume the role through OIDC, for one repository's branch or environment only. Role
// renders both for an account, a region, a repository and a history location (`go run ./ci
// iam`); tests keep the policy and the code's AWS calls from drifting apart.
package iam

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

//go:embed policy.json
var policyJSON []byte

// DefaultRepository is the repository policy.json is written for.
const DefaultRepository = "deploydrill"

// Document returns policy.json as stored.
func Document() []byte { return append([]byte(nil), policyJSON...) }

// ForRepository returns the policy for another repository name, in any account and region,
// its history statements as stored (Role.Permissions scopes it to one account, region and
// history location as well).
func ForRepository(name string) ([]byte, error) {
	if !repositoryPattern.MatchString(name) {
		return nil, fmt.Errorf("iam policy: %q is not a repository name", name)
	}
	return render(scope{repository: name, history: storedHistory})
}

// RegistryActions are what the OCI registry protocol (push from the pipeline, pull on the
// host with the runner's token) needs; the SDK never calls them, so no scan finds them.
var RegistryActions = []string{
	"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
	"ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
}

// sdkActions are the SDK operations whose IAM action has another name.
var sdkActions = map[string]string{
	"s3:ListObjectsV2": "s3:ListBucket",
}

// sdkServices are the SDK service packages whose IAM service prefix has another name:
// ELBv2's actions are elasticloadbalancing:CreateLoadBalancer and so on.
var sdkServices = map[string]string{
	"elasticloadbalancingv2": "elasticloadbalancing",
}

// Action is the IAM action that authorises an SDK operation named "service:Operation" (the
// service as the SDK's package names it, or as IAM does): the operation's own name under the
// service's IAM prefix, unless sdkActions says otherwise.
func Action(operation string) string {
	if a, ok := sdkActions[operation]; ok {
		return a
	}
	if svc, op, ok := strings.Cut(operation, ":"); ok {
		if prefix, ok := sdkServices[svc]; ok {
			return prefix + ":" + op
		}
	}
	return operation
}

// ImpliedActions are authorised alongside a call rather than called: tags set at creation
// need ec2:CreateTags (EC2), ecr:TagResource (ECR) and elasticloadbalancing:AddTags (ELBv2).
var ImpliedActions = []string{"ec2:CreateTags", "ecr:TagResource", "elasticloadbalancing:AddTags"}

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement; Action and Resource accept a string or a list, as IAM does.
// Principal appears in trust policies only.
type Statement struct {
	Sid       string                                `json:"Sid"`
	Effect    string                                `json:"Effect"`
	Principal map[string]stringList                 `json:"Principal,omitempty"`
	Action    stringList                            `json:"Action"`
	Resource  stringList                            `json:"Resource,omitempty"`
	Condition map[string]map[string]json.RawMessage `json:"Condition,omitempty"`
}

type stringList []string

// MarshalJSON writes one value as a string and several as a list, as policy.json does.
func (s stringList) MarshalJSON() ([]byte, error) {
	if len(s) == 1 {
		return json.Marshal(s[0])
	}
	return json.Marshal([]string(s))
}

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// Parse reads a policy document.
func Parse(doc []byte) (Policy, error) {
	var p Policy
	if err := json.Unmarshal(doc, &p); err != nil {
		return Policy{}, fmt.Errorf("iam policy: %w", err)
	}
	return p, nil
}

// Load parses policy.json.
func Load() (Policy, error) { return Parse(policyJSON) }

// Allowing returns the Allow statements that name action (IAM wildcards * and ? honoured).
func (p Policy) Allowing(action string) []Statement {
	var out []Statement
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Action {
			if wildcard(a, action) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Allows reports whether some statement allows action (conditions and resources aside).
func (p Policy) Allows(action string) bool { return len(p.Allowing(action)) > 0 }

// Refuses checks actions (service:Action, as a double records the calls it served) against the
// drill's policy and says which it does not allow, each once; nil when it allows them all.
func Refuses(actions []string) error {
	p, err := Load()
	if err != nil {
		return err
	}
	var refused []string
	for _, a := range actions {
		if !p.Allows(a) && !slices.Contains(refused, a) {
			refused = append(refused, a)
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("infra/iam/policy.json does not allow %s", strings.Join(refused, ", "))
	}
	return nil
}

// AllowsOn reports whether some statement allows action on the resource ARN (conditions
// aside). ARNs match case-sensitively, as IAM matches them.
func (p Policy) AllowsOn(action, resource string) bool {
	for _, s := range p.Allowing(action) {
		for _, r := range s.Resource {
			if arnMatch(r, resource) {
				return true
			}
		}
	}
	return false
}

// AllowsRequest reports whether some statement allows action on the resource ARN for a
// request that carries the condition keys in context (e.g. "s3:prefix"), every condition of
// the statement evaluated. Only StringEquals and StringLike are understood, values matched
// case-sensitively as IAM matches them; a key absent from context fails its condition, and so
// does any other operator, so that a check never passes on a condition it did not read.
func (p Policy) AllowsRequest(action, resource string, context map[string]string) bool {
	for _, s := range p.Allowing(action) {
		if slices.ContainsFunc(s.Resource, func(r string) bool { return arnMatch(r, resource) }) && s.admits(context) {
			return true
		}
	}
	return false
}

// conditionOperators are the condition operators AllowsRequest evaluates.
var conditionOperators = map[string]func(pattern, value string) bool{
	"StringEquals": func(pattern, value string) bool { return pattern == value },
	"StringLike":   glob,
}

func (s Statement) admits(context map[string]string) bool {
	for operator, byKey := range s.Condition {
		match := conditionOperators[operator]
		if match == nil {
			return false
		}
		for key := range byKey {
			value, ok := lookup(context, key)
			if !ok || !slices.ContainsFunc(s.ConditionValues(operator, key), func(p string) bool { return match(p, value) }) {
				return false
			}
		}
	}
	return true
}

// lookup finds a condition key, whose name IAM compares case-insensitively.
func lookup(context map[string]string, key string) (string, bool) {
	for k, v := range context {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// ConditionValues returns the values of a condition key under an operator (e.g. "StringEquals",
// "aws:RequestedRegion"), decoded into a list.
func (s Statement) ConditionValues(operator, key string) []string {
	raw, ok := s.Condition[operator][key]
	if !ok {
		return nil
	}
	var values stringList
	if err := json.Unmarshal(raw, &values); err != nil {
		return nil
	}
	return values
}

// HasCondition reports whether the statement has a condition on key (e.g. "aws:RequestTag/...").
func (s Statement) HasCondition(key string) bool {
	for _, byKey := range s.Condition {
		if _, ok := byKey[key]; ok {
			return true
		}
	}
	return false
}

// wildcard matches IAM patterns case-insensitively, as IAM does for actions.
func wildcard(pattern, s string) bool { return glob(strings.ToLower(pattern), strings.ToLower(s)) }

// arnMatch matches a Resource pattern against an ARN as IAM does: case-sensitively, "*"
// alone matches everything, otherwise segment by segment (a wildcard never spans a colon
// between the six ARN segments; the last segment may itself hold colons).
func arnMatch(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	ps, as := strings.SplitN(pattern, ":", 6), strings.SplitN(arn, ":", 6)
	if len(ps) != 6 || len(as) != 6 {
		return false
	}
	for i := range ps {
		if !glob(ps[i], as[i]) {
			return false
		}
	}
	return true
}

// glob matches * (any run) and ? (one character).
func glob(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}
