package iam_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/infra/iam"
)

const sdkServices = "github.com/aws/aws-sdk-go-v2/service/"

// calledActions scans every non-test Go file of the product (the module minus test machinery)
// for interface methods shaped like an SDK operation, Op(ctx, *svc.OpInput, ...func(*svc.Options)),
// and returns the IAM action that authorises each ("svc:Op", or the name iam.Action maps it
// to, as ListObjectsV2 to s3:ListBucket). The service packages reach AWS only through such interfaces
// (see each package's api type), and the scenario tests in infra/teardown check every call the
// double served as well.
func calledActions(t *testing.T) []string {
	t.Helper()
	var actions []string
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "../.." && (strings.HasPrefix(name, ".") || name == "testdata" || path == "../../internal" || path == "../../hack") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		services := map[string]string{} // import name -> service
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if svc, ok := strings.CutPrefix(p, sdkServices); ok && !strings.Contains(svc, "/") {
				name := svc
				if imp.Name != nil {
					name = imp.Name.Name
				}
				services[name] = svc
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			it, ok := n.(*ast.InterfaceType)
			if !ok {
				return true
			}
			for _, m := range it.Methods.List {
				fn, ok := m.Type.(*ast.FuncType)
				if !ok || len(m.Names) != 1 || len(fn.Params.List) < 2 {
					continue
				}
				star, ok := fn.Params.List[1].Type.(*ast.StarExpr)
				if !ok {
					continue
				}
				sel, ok := star.X.(*ast.SelectorExpr)
				if !ok {
					continue
				}
				pkg, ok := sel.X.(*ast.Ident)
				svc := services[pkg.Name]
				if !ok || svc == "" || sel.Sel.Name != m.Names[0].Name+"Input" {
					continue
				}
				actions = append(actions, iam.Action(svc+":"+m.Names[0].Name))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(actions)
	return slices.Compact(actions)
}

// document is a policy as stored or as rendered, with the one ECR resource it must name and
// the history location its S3 statements must be confined to (zero: it must have none).
type document struct {
	name       string
	policy     iam.Policy
	repository string
	history    iam.S3Location
}

// storedHistory is the location policy.json's history statements are written for.
var storedHistory = iam.S3Location{Bucket: iam.StoredHistoryBucket, Prefix: iam.StoredHistoryPrefix}

// documents are policy.json as stored and as `go run ./ci iam` renders it, with a history in
// S3 and without: every property below holds for each, so rendering can neither drop a
// permission nor widen one.
func documents(t *testing.T) []document {
	t.Helper()
	stored, err := iam.Load()
	if err != nil {
		t.Fatal(err)
	}
	docs := []document{{"policy.json", stored, "arn:aws:ecr:*:*:repository/deploydrill", storedHistory}}
	for _, r := range []struct {
		name       string
		role       iam.Role
		repository string
	}{
		{"rendered for one region and another repository",
			iam.Role{Account: "123456789012", Repo: "octo-org/drill", Region: "eu-west-1", Repository: "team/drill-app"},
			"arn:aws:ecr:eu-west-1:123456789012:repository/team/drill-app"},
		{"rendered for every region",
			iam.Role{Account: "210987654321", Repo: "octo-org/drill"},
			"arn:aws:ecr:*:210987654321:repository/deploydrill"},
		{"rendered with a history in S3",
			iam.Role{Account: "123456789012", Repo: "octo-org/drill", Region: "eu-west-1",
				History: iam.S3Location{Bucket: "octo.drill-records", Prefix: "team/app"}},
			"arn:aws:ecr:eu-west-1:123456789012:repository/deploydrill"},
		{"rendered with a history filling a bucket",
			iam.Role{Account: "210987654321", Repo: "octo-org/drill", History: iam.S3Location{Bucket: "drill-records"}},
			"arn:aws:ecr:*:210987654321:repository/deploydrill"},
	} {
		doc, err := r.role.Permissions()
		if err != nil {
			t.Fatal(err)
		}
		p, err := iam.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, document{r.name, p, r.repository, r.role.History})
	}
	return docs
}

func TestPolicyAllowsEveryCallTheCodeMakes(t *testing.T) {
	called := calledActions(t)
	for _, must := range []string{"ec2:RunInstances", "ec2:TerminateInstances", "ecr:PutImage", "ssm:GetParameter", "s3:ListBucket",
		"elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:DescribeTargetHealth"} {
		if !slices.Contains(called, must) {
			t.Fatalf("the scan missed %s (found %v): fix the scanner before trusting this test", must, called)
		}
	}
	t.Logf("the code calls %d operations: %v", len(called), called)
	for _, d := range documents(t) {
		for _, a := range slices.Concat(called, iam.RegistryActions) {
			// The S3 calls are the history's: a role whose history is not in S3 needs none.
			want := d.history != (iam.S3Location{}) || !strings.HasPrefix(a, "s3:")
			switch got := d.policy.Allows(a); {
			case want && !got:
				t.Errorf("%s does not allow %s, which the code calls", d.name, a)
			case !want && got:
				t.Errorf("%s allows %s, though its history is not in S3", d.name, a)
			}
		}
	}
}

func TestHistoryIsConfinedToItsPrefix(t *testing.T) {
	for _, d := range documents(t) {
		t.Run(d.name, func(t *testing.T) {
			h := d.history
			for _, s := range d.policy.Statement {
				for _, a := range s.Action {
					if !strings.HasPrefix(a, "s3:") {
						continue
					}
					if h == (iam.S3Location{}) {
						t.Errorf("%s: %s, though the history is not in S3", s.Sid, a)
						continue
					}
					switch a {
					case "s3:GetObject", "s3:PutObject":
						if !slices.Equal(s.Resource, []string{h.ObjectsARN()}) || s.Condition != nil {
							t.Errorf("%s: %s on %v with %v, want only %s", s.Sid, a, s.Resource, s.Condition, h.ObjectsARN())
						}
					case "s3:ListBucket":
						if !slices.Equal(s.Resource, []string{h.BucketARN()}) {
							t.Errorf("%s: %s on %v, want only %s", s.Sid, a, s.Resource, h.BucketARN())
						}
						// The store lists with Prefix "PREFIX/", and a bucket of its own with none.
						want := "null"
						if h.Prefix != "" {
							want = `{"StringEquals":{"s3:prefix":"` + h.Prefix + `/"}}`
						}
						if got, _ := json.Marshal(s.Condition); string(got) != want {
							t.Errorf("%s: %s with the condition %s, want %s", s.Sid, a, got, want)
						}
					default:
						t.Errorf("%s: %s: the history only reads, writes new records and lists them", s.Sid, a)
					}
				}
			}
			if d.policy.Allows("s3:DeleteObject") {
				t.Error("allows s3:DeleteObject: the history is append-only")
			}
		})
	}
}

func TestPolicyGrantsNothingUnused(t *testing.T) {
	used := slices.Concat(calledActions(t), iam.RegistryActions, iam.ImpliedActions)
	for _, d := range documents(t) {
		for _, s := range d.policy.Statement {
			for _, a := range s.Action {
				if strings.Contains(a, "*") || !slices.Contains(used, a) {
					t.Errorf("%s: statement %s grants %s, which nothing calls", d.name, s.Sid, a)
				}
			}
		}
	}
}

func TestCreateCallsRequireTheRequestTag(t *testing.T) {
	for _, d := range documents(t) {
		t.Run(d.name, func(t *testing.T) { checkCreateCallsRequireTheRequestTag(t, d.policy) })
	}
}

func checkCreateCallsRequireTheRequestTag(t *testing.T, p iam.Policy) {
	t.Helper()
	created := map[string][]string{
		"ec2:RunInstances":                        {"instance/", "volume/", "network-interface/"},
		"ec2:CreateSecurityGroup":                 {"security-group/"},
		"ec2:ImportKeyPair":                       {"key-pair/"},
		"elasticloadbalancing:CreateLoadBalancer": {"loadbalancer/"},
		"elasticloadbalancing:CreateTargetGroup":  {"targetgroup/"},
	}
	for action, kinds := range created {
		for _, s := range p.Allowing(action) {
			for _, r := range s.Resource {
				creates := r == "*" || slices.ContainsFunc(kinds, func(k string) bool { return strings.Contains(r, ":"+k) })
				if creates && !s.HasCondition("aws:RequestTag/deploydrill:created-by") {
					t.Errorf("%s: %s on %s without the created-by request tag", s.Sid, action, r)
				}
			}
		}
	}
	for _, s := range p.Allowing("ec2:CreateTags") {
		if !s.HasCondition("ec2:CreateAction") {
			t.Errorf("%s: ec2:CreateTags outside tag-on-create would let anyone tag a resource as ours", s.Sid)
		}
	}
	for _, s := range p.Allowing("elasticloadbalancing:AddTags") {
		if !s.HasCondition("elasticloadbalancing:CreateAction") {
			t.Errorf("%s: elasticloadbalancing:AddTags outside tag-on-create would let anyone tag a resource as ours", s.Sid)
		}
	}
}

func TestChangesRequireTheResourceTag(t *testing.T) {
	for _, d := range documents(t) {
		// A listener is created on a load balancer, which must be ours (it goes with it).
		for _, action := range []string{"ec2:TerminateInstances", "ec2:DeleteSecurityGroup", "ec2:DeleteKeyPair", "ec2:DeleteVolume", "ec2:AuthorizeSecurityGroupIngress",
			"elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener", "elasticloadbalancing:DeleteLoadBalancer",
			"elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets",
			"elasticloadbalancing:ModifyTargetGroupAttributes"} {
			for _, s := range d.policy.Allowing(action) {
				for _, r := range s.Resource {
					if !strings.HasSuffix(r, ":security-group-rule/*") && !s.HasCondition("aws:ResourceTag/deploydrill:created-by") {
						t.Errorf("%s: %s: %s on %s without the created-by resource tag", d.name, s.Sid, action, r)
					}
				}
			}
		}
	}
}

// TestBalancerCallsAreTaggedOrReadOnly: every ELBv2 action the policy grants either only reads
// (Describe*) or carries one of the tool's tag conditions (the request's tag to create, the
// resource's tag to change, tag-on-create for AddTags).
func TestBalancerCallsAreTaggedOrReadOnly(t *testing.T) {
	for _, d := range documents(t) {
		for _, s := range d.policy.Statement {
			for _, a := range s.Action {
				op, ok := strings.CutPrefix(a, "elasticloadbalancing:")
				if !ok || strings.HasPrefix(op, "Describe") {
					continue
				}
				if !s.HasCondition("aws:RequestTag/deploydrill:created-by") && !s.HasCondition("aws:ResourceTag/deploydrill:created-by") &&
					!s.HasCondition("elasticloadbalancing:CreateAction") {
					t.Errorf("%s: %s: %s without a tag condition", d.name, s.Sid, a)
				}
			}
		}
	}
}

func TestECRIsScopedToTheRepository(t *testing.T) {
	for _, d := range documents(t) {
		for _, s := range d.policy.Statement {
			for _, a := range s.Action {
				if !strings.HasPrefix(a, "ecr:") || a == "ecr:GetAuthorizationToken" {
					continue
				}
				if !slices.Equal(s.Resource, []string{d.repository}) {
					t.Errorf("%s: %s: %s on %v, want only %s", d.name, s.Sid, a, s.Resource, d.repository)
				}
			}
		}
	}
}

func TestForRepository(t *testing.T) {
	doc, err := iam.ForRepository("team/drill-app")
	if err != nil {
		t.Fatal(err)
	}
	p, err := iam.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Allowing("ecr:PutImage")[0].Resource; !slices.Equal(got, []string{"arn:aws:ecr:*:*:repository/team/drill-app"}) {
		t.Errorf("resource %v", got)
	}
	if _, err := iam.ForRepository(`x"*`); err == nil {
		t.Error("accepted a name that would break the JSON")
	}
}
