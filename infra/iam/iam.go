// Package iam holds the least-privilege IAM policy the AWS target needs (policy.json): create
// calls only with this tool's request tag, changes and deletes only on resources carrying it,
// ECR only on the drill's repository. Tests keep it and the code from drifting apart.
package iam

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

//go:embed policy.json
var policyJSON []byte

// DefaultRepository is the repository policy.json is written for.
const DefaultRepository = "deploydrill"

// Document returns policy.json as stored.
func Document() []byte { return append([]byte(nil), policyJSON...) }

// ForRepository returns the policy for another repository name.
func ForRepository(name string) ([]byte, error) {
	if !regexp.MustCompile(`^[a-z0-9]+(?:[._/-][a-z0-9]+)*$`).MatchString(name) {
		return nil, fmt.Errorf("iam policy: %q is not a repository name", name)
	}
	return []byte(strings.ReplaceAll(string(policyJSON), ":repository/"+DefaultRepository+`"`, ":repository/"+name+`"`)), nil
}

// RegistryActions are what the OCI registry protocol (push from the pipeline, pull on the
// host with the runner's token) needs; the SDK never calls them, so no scan finds them.
var RegistryActions = []string{
	"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
	"ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
}

// ImpliedActions are authorised alongside a call rather than called: tags set at creation
// need ec2:CreateTags (EC2) and ecr:TagResource (ECR).
var ImpliedActions = []string{"ec2:CreateTags", "ecr:TagResource"}

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement; Action and Resource accept a string or a list, as IAM does.
type Statement struct {
	Sid       string                                `json:"Sid"`
	Effect    string                                `json:"Effect"`
	Action    stringList                            `json:"Action"`
	Resource  stringList                            `json:"Resource"`
	Condition map[string]map[string]json.RawMessage `json:"Condition,omitempty"`
}

type stringList []string

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
func wildcard(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(strings.ToLower(pattern))) + "$"
	return regexp.MustCompile(re).MatchString(strings.ToLower(s))
}
