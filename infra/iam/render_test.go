package iam_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/infra/iam"
	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/internal/golden"
)

const account = "123456789012"

func TestTrustPolicy(t *testing.T) {
	tests := []struct {
		name   string
		role   iam.Role
		golden string
	}{
		{"a job on main, the default", iam.Role{Account: account, Repo: "octo-org/deploydrill"}, "trust-main.golden"},
		{"a job in a GitHub environment", iam.Role{Account: account, Repo: "octo-org/deploydrill", Environment: "aws-drill"}, "trust-environment.golden"},
		{"a repository whose subject carries the immutable ids", iam.Role{Account: account, Repo: "repo:octo-org@1234567/deploydrill@987654321", Branch: "release/v2"}, "trust-immutable.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := tt.role.Trust()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.golden), doc)
		})
	}
}

func TestPermissionsPolicy(t *testing.T) {
	tests := []struct {
		name   string
		role   iam.Role
		golden string
	}{
		{"one region, the default repository", iam.Role{Account: account, Repo: "octo-org/deploydrill", Region: "eu-west-1"}, "permissions-eu-west-1.golden"},
		{"every region, another repository", iam.Role{Account: account, Repo: "octo-org/deploydrill", Repository: "team/drill-app"}, "permissions-any-region.golden"},
		{"one region, a history in S3", iam.Role{Account: account, Repo: "octo-org/deploydrill", Region: "eu-west-1",
			History: iam.S3Location{Bucket: "octo-drill-history", Prefix: "deploydrill/main"}}, "permissions-history.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := tt.role.Permissions()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.golden), doc)
		})
	}
}

func TestSubjectIsWhatGitHubPutsInTheToken(t *testing.T) {
	tests := []struct {
		name string
		role iam.Role
		want string
	}{
		{"no branch means main", iam.Role{Repo: "octo-org/app"}, "repo:octo-org/app:ref:refs/heads/main"},
		{"a branch given as a full ref", iam.Role{Repo: "octo-org/app", Branch: "refs/heads/release/v2"}, "repo:octo-org/app:ref:refs/heads/release/v2"},
		{"an environment instead of a branch", iam.Role{Repo: "octo-org/app", Environment: "Production EU"}, "repo:octo-org/app:environment:Production EU"},
		{"GitHub's sub_claim_prefix pasted as it is", iam.Role{Repo: "repo:octo-org@42/app@4242"}, "repo:octo-org@42/app@4242:ref:refs/heads/main"},
		{"case kept, as the claim keeps it", iam.Role{Repo: "Octo-Org/My.App_2"}, "repo:Octo-Org/My.App_2:ref:refs/heads/main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.role.Account = account
			got, err := tt.role.Subject()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("subject %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoleRefusesWhatWouldWidenOrNeverMatch(t *testing.T) {
	valid := iam.Role{Account: account, Repo: "octo-org/app", Region: "eu-west-1"}
	tests := []struct {
		name string
		edit func(*iam.Role)
		want string
	}{
		{"an account id one digit short", func(r *iam.Role) { r.Account = "12345678901" }, `account "12345678901"`},
		{"an account wildcard", func(r *iam.Role) { r.Account = "*" }, `account "*"`},
		{"no account", func(r *iam.Role) { r.Account = "" }, `account ""`},
		{"every repository of the owner", func(r *iam.Role) { r.Repo = "octo-org/*" }, `"*" is not a GitHub repository name`},
		{"every owner", func(r *iam.Role) { r.Repo = "*/app" }, `owner "*"`},
		{"no owner", func(r *iam.Role) { r.Repo = "app" }, "want OWNER/REPO"},
		{"a path instead of a repository", func(r *iam.Role) { r.Repo = "octo-org/app/extra" }, "want OWNER/REPO"},
		{"a repository id without the owner's", func(r *iam.Role) { r.Repo = "octo-org/app@4242" }, "both the owner and the repository"},
		{"an id that is not a number", func(r *iam.Role) { r.Repo = "octo-org@x/app@4242" }, "numeric owner and repository ids"},
		{"a wildcard branch", func(r *iam.Role) { r.Branch = "release/*" }, `branch "release/*"`},
		{"a branch with a space", func(r *iam.Role) { r.Branch = "my branch" }, `branch "my branch"`},
		{"a branch that climbs", func(r *iam.Role) { r.Branch = "a..b" }, `branch "a..b"`},
		{"a tag instead of a branch", func(r *iam.Role) { r.Branch = "refs/tags/v1" }, "only branches"},
		{"a wildcard environment", func(r *iam.Role) { r.Environment = "prod-?" }, `environment "prod-?"`},
		{"an environment that would extend the subject", func(r *iam.Role) { r.Environment = "prod:ref:x" }, `environment "prod:ref:x"`},
		{"both a branch and an environment", func(r *iam.Role) { r.Branch, r.Environment = "main", "prod" }, "give one"},
		{"a region wildcard", func(r *iam.Role) { r.Region = "*" }, `region "*"`},
		{"a China region", func(r *iam.Role) { r.Region = "cn-north-1" }, "outside the aws partition"},
		{"a GovCloud region", func(r *iam.Role) { r.Region = "us-gov-west-1" }, "outside the aws partition"},
		{"an ECR repository wildcard", func(r *iam.Role) { r.Repository = "drill*" }, `repository "drill*"`},
		{"a history bucket wildcard", func(r *iam.Role) { r.History = iam.S3Location{Bucket: "drill-*", Prefix: "h"} }, `bucket "drill-*"`},
		{"a history prefix wildcard", func(r *iam.Role) { r.History = iam.S3Location{Bucket: "drills", Prefix: "team/*"} }, `prefix "team/*"`},
		{"a history prefix that is a policy variable", func(r *iam.Role) { r.History = iam.S3Location{Bucket: "drills", Prefix: "${aws:username}"} }, `prefix "${aws:username}"`},
		{"a history prefix without its bucket", func(r *iam.Role) { r.History = iam.S3Location{Prefix: "drills"} }, "no bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid
			tt.edit(&r)
			for what, render := range map[string]func() ([]byte, error){"trust": r.Trust, "permissions": r.Permissions} {
				doc, err := render()
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: error %v, want one saying %s; rendered:\n%s", what, err, tt.want, doc)
				}
			}
		})
	}
	if err := valid.Validate(); err != nil {
		t.Errorf("the valid role was refused: %v", err)
	}
}

func TestTrustAdmitsOneSubjectExactly(t *testing.T) {
	for _, r := range []iam.Role{
		{Account: account, Repo: "octo-org/app"},
		{Account: account, Repo: "octo-org@1/app@2", Environment: "prod"},
	} {
		doc, err := r.Trust()
		if err != nil {
			t.Fatal(err)
		}
		p, err := iam.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		sub, _ := r.Subject()
		if len(p.Statement) != 1 {
			t.Fatalf("%d statements, want one", len(p.Statement))
		}
		s := p.Statement[0]
		if got := s.Principal["Federated"]; !slices.Equal(got, []string{"arn:aws:iam::" + account + ":oidc-provider/token.actions.githubusercontent.com"}) || len(s.Principal) != 1 {
			t.Errorf("principal %v, want only GitHub's OIDC provider in the account", s.Principal)
		}
		if !slices.Equal(s.Action, []string{"sts:AssumeRoleWithWebIdentity"}) || s.Effect != "Allow" {
			t.Errorf("%s %v, want Allow sts:AssumeRoleWithWebIdentity", s.Effect, s.Action)
		}
		if len(s.Condition) != 1 || len(s.Condition["StringEquals"]) != 2 {
			t.Errorf("conditions %v, want exactly StringEquals on aud and sub (no StringLike, no wildcards)", s.Condition)
		}
		if got := s.ConditionValues("StringEquals", "token.actions.githubusercontent.com:aud"); !slices.Equal(got, []string{"sts.amazonaws.com"}) {
			t.Errorf("aud %v", got)
		}
		if got := s.ConditionValues("StringEquals", "token.actions.githubusercontent.com:sub"); !slices.Equal(got, []string{sub}) || strings.ContainsAny(sub, "*?") {
			t.Errorf("sub %v, want exactly %q", got, sub)
		}
	}
}

func TestTrustTemplateIsItselfJSON(t *testing.T) {
	b, err := os.ReadFile("trust.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Error("trust.json is not valid JSON: keep the template's actions inside strings")
	}
}

// IAM counts policy size without whitespace: 2,048 characters for a trust policy (the
// default quota) and 6,144 for a managed policy (inline role policies allow 10,240).
func TestPoliciesFitIAMSizeLimits(t *testing.T) {
	long := iam.Role{
		Account:     account,
		Repo:        "a-rather-long-organization-name@123456789/and-a-rather-long-repository-name@1234567890",
		Environment: strings.Repeat("e", 255),
		Region:      "ap-southeast-7",
		Repository:  "some/deeply/nested/repository-name-for-the-drill",
		History:     iam.S3Location{Bucket: strings.Repeat("b", 63), Prefix: strings.Repeat("p/", 255) + "pp"},
	}
	for _, tt := range []struct {
		what   string
		render func() ([]byte, error)
		limit  int
	}{
		{"trust", long.Trust, 2048},
		{"permissions", long.Permissions, 6144},
	} {
		doc, err := tt.render()
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, doc); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s policy: %d characters without whitespace (limit %d)", tt.what, compact.Len(), tt.limit)
		if compact.Len() > tt.limit {
			t.Errorf("%s policy is %d characters without whitespace, over IAM's %d", tt.what, compact.Len(), tt.limit)
		}
	}
}

func TestRenderedPermissionsStayInTheAccountAndRegion(t *testing.T) {
	history := iam.S3Location{Bucket: "drill-history", Prefix: "app"}
	doc, err := iam.Role{Account: account, Repo: "octo-org/app", Region: "eu-west-1", History: history}.Permissions()
	if err != nil {
		t.Fatal(err)
	}
	p, err := iam.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Statement {
		for _, r := range s.Resource {
			if r == "*" {
				if got := s.ConditionValues("StringEquals", "aws:RequestedRegion"); !slices.Equal(got, []string{"eu-west-1"}) {
					t.Errorf("%s: Resource * without aws:RequestedRegion eu-west-1 (got %v)", s.Sid, got)
				}
				continue
			}
			seg := strings.SplitN(r, ":", 6)
			if seg[2] == "s3" {
				// Bucket names are unique in the partition: S3 ARNs name no region or account.
				if r != history.BucketARN() && r != history.ObjectsARN() {
					t.Errorf("%s: %s is not the history's bucket or prefix", s.Sid, r)
				}
				continue
			}
			public := strings.HasPrefix(seg[5], "image/") || strings.HasPrefix(seg[5], "parameter/aws/service/")
			if seg[3] != "eu-west-1" || (seg[4] != account && !(public && seg[4] == "")) {
				t.Errorf("%s: %s is not pinned to %s in eu-west-1", s.Sid, r, account)
			}
		}
	}
}

// TestBalancerConditionsHold evaluates the ELBv2 statements' conditions for requests the
// drill makes and requests it must not be able to make.
func TestBalancerConditionsHold(t *testing.T) {
	doc, err := iam.Role{Account: account, Repo: "octo-org/app", Region: "eu-west-1"}.Permissions()
	if err != nil {
		t.Fatal(err)
	}
	p, err := iam.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:elasticloadbalancing:eu-west-1:" + account + ":"
	ours := map[string]string{"aws:RequestTag/deploydrill:created-by": "deploydrill", "aws:ResourceTag/deploydrill:created-by": "deploydrill"}
	tests := []struct {
		name             string
		action, resource string
		context          map[string]string
		want             bool
	}{
		{"creating a load balancer tagged as ours", "elasticloadbalancing:CreateLoadBalancer", arn + "loadbalancer/app/d/1",
			map[string]string{"aws:RequestTag/deploydrill:created-by": "deploydrill"}, true},
		{"creating a load balancer without the tag", "elasticloadbalancing:CreateLoadBalancer", arn + "loadbalancer/app/d/1", map[string]string{}, false},
		{"creating a target group tagged by someone else", "elasticloadbalancing:CreateTargetGroup", arn + "targetgroup/d/1",
			map[string]string{"aws:RequestTag/deploydrill:created-by": "someone"}, false},
		{"adding a listener to our load balancer", "elasticloadbalancing:CreateListener", arn + "loadbalancer/app/d/1", ours, true},
		{"adding a listener to another load balancer", "elasticloadbalancing:CreateListener", arn + "loadbalancer/app/prod/1",
			map[string]string{"aws:RequestTag/deploydrill:created-by": "deploydrill", "aws:ResourceTag/deploydrill:created-by": "prod"}, false},
		{"registering targets with our target group", "elasticloadbalancing:RegisterTargets", arn + "targetgroup/d/1", ours, true},
		{"deregistering targets of another target group", "elasticloadbalancing:DeregisterTargets", arn + "targetgroup/prod/1", map[string]string{}, false},
		{"deleting another load balancer", "elasticloadbalancing:DeleteLoadBalancer", arn + "loadbalancer/app/prod/1",
			map[string]string{"aws:ResourceTag/deploydrill:created-by": "prod"}, false},
		{"tagging while creating a load balancer", "elasticloadbalancing:AddTags", arn + "loadbalancer/app/d/1",
			map[string]string{"elasticloadbalancing:CreateAction": "CreateLoadBalancer", "aws:RequestedRegion": "eu-west-1"}, true},
		{"tagging an existing load balancer", "elasticloadbalancing:AddTags", arn + "loadbalancer/app/prod/1",
			map[string]string{"aws:RequestedRegion": "eu-west-1"}, false},
		{"reading target health", "elasticloadbalancing:DescribeTargetHealth", "*", map[string]string{"aws:RequestedRegion": "eu-west-1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.AllowsRequest(tt.action, tt.resource, tt.context); got != tt.want {
				t.Errorf("AllowsRequest(%s, %s, %v) = %v, want %v", tt.action, tt.resource, tt.context, got, tt.want)
			}
		})
	}
}

func TestRenderedPermissionsAllowTheDrillAndNothingNextToIt(t *testing.T) {
	doc, err := iam.Role{Account: account, Repo: "octo-org/app", Region: "eu-west-1", Repository: "drill",
		History: iam.S3Location{Bucket: "drill-history", Prefix: "team/app"}}.Permissions()
	if err != nil {
		t.Fatal(err)
	}
	p, err := iam.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	// The parameter the code reads, so a move to another parameter fails here.
	ubuntu := "arn:aws:ssm:eu-west-1::parameter" + ssm.UbuntuNobleAMIParameter
	tests := []struct {
		name             string
		action, resource string
		want             bool
	}{
		{"terminating an instance in the role's account and region", "ec2:TerminateInstances", "arn:aws:ec2:eu-west-1:" + account + ":instance/i-0abc", true},
		{"terminating an instance in another region", "ec2:TerminateInstances", "arn:aws:ec2:us-east-1:" + account + ":instance/i-0abc", false},
		{"terminating an instance in another account", "ec2:TerminateInstances", "arn:aws:ec2:eu-west-1:999999999999:instance/i-0abc", false},
		{"launching from a public AMI", "ec2:RunInstances", "arn:aws:ec2:eu-west-1::image/ami-0abc", true},
		{"launching into a subnet of another account", "ec2:RunInstances", "arn:aws:ec2:eu-west-1:999999999999:subnet/subnet-1", false},
		{"pushing to the drill's repository", "ecr:PutImage", "arn:aws:ecr:eu-west-1:" + account + ":repository/drill", true},
		{"pushing to a repository whose name starts like the drill's", "ecr:PutImage", "arn:aws:ecr:eu-west-1:" + account + ":repository/drill-prod", false},
		{"deleting the drill's repository in another region", "ecr:DeleteRepository", "arn:aws:ecr:us-east-1:" + account + ":repository/drill", false},
		{"reading Ubuntu's AMI parameter", "ssm:GetParameter", ubuntu, true},
		{"reading another public parameter", "ssm:GetParameter", "arn:aws:ssm:eu-west-1::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", false},
		{"reading the account's own parameters", "ssm:GetParameter", "arn:aws:ssm:eu-west-1:" + account + ":parameter/prod/db-password", false},
		{"writing a drill record", "s3:PutObject", "arn:aws:s3:::drill-history/team/app/20250301T090000Z-run-1.json", true},
		{"reading a drill record", "s3:GetObject", "arn:aws:s3:::drill-history/team/app/20250301T090000Z-run-1.json", true},
		{"deleting a drill record", "s3:DeleteObject", "arn:aws:s3:::drill-history/team/app/20250301T090000Z-run-1.json", false},
		{"writing next to the history's prefix", "s3:PutObject", "arn:aws:s3:::drill-history/team/app-prod/x.json", false},
		{"reading above the history's prefix", "s3:GetObject", "arn:aws:s3:::drill-history/team/secrets.json", false},
		{"writing to another bucket", "s3:PutObject", "arn:aws:s3:::other-bucket/team/app/x.json", false},
		{"listing another bucket", "s3:ListBucket", "arn:aws:s3:::other-bucket", false},
		{"creating an application load balancer", "elasticloadbalancing:CreateLoadBalancer", "arn:aws:elasticloadbalancing:eu-west-1:" + account + ":loadbalancer/app/deploydrill-r1/50dc6c495c0c9188", true},
		{"creating a network load balancer", "elasticloadbalancing:CreateLoadBalancer", "arn:aws:elasticloadbalancing:eu-west-1:" + account + ":loadbalancer/net/deploydrill-r1/50dc6c495c0c9188", false},
		{"deleting a target group in the role's account and region", "elasticloadbalancing:DeleteTargetGroup", "arn:aws:elasticloadbalancing:eu-west-1:" + account + ":targetgroup/deploydrill-r1/943f017f100becff", true},
		{"deleting a load balancer in another region", "elasticloadbalancing:DeleteLoadBalancer", "arn:aws:elasticloadbalancing:us-east-1:" + account + ":loadbalancer/app/deploydrill-r1/50dc6c495c0c9188", false},
		{"deleting a listener in another account", "elasticloadbalancing:DeleteListener", "arn:aws:elasticloadbalancing:eu-west-1:999999999999:listener/app/x/50dc6c495c0c9188/f2f7dc8efc522ab2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.AllowsOn(tt.action, tt.resource); got != tt.want {
				t.Errorf("AllowsOn(%s, %s) = %v, want %v", tt.action, tt.resource, got, tt.want)
			}
		})
	}
}
