package iam_test

import (
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

// calledActions scans every non-test Go file under infra/ for interface methods shaped like an
// SDK operation, Op(ctx, *svc.OpInput, ...func(*svc.Options)), and returns "svc:Op" for each.
// The service packages reach AWS only through such interfaces (see each package's api type),
// and the scenario tests in infra/teardown check every call the double served as well.
func calledActions(t *testing.T) []string {
	t.Helper()
	var actions []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
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
				actions = append(actions, svc+":"+m.Names[0].Name)
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

func load(t *testing.T) iam.Policy {
	t.Helper()
	p, err := iam.Load()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyAllowsEveryCallTheCodeMakes(t *testing.T) {
	p := load(t)
	called := calledActions(t)
	for _, must := range []string{"ec2:RunInstances", "ec2:TerminateInstances", "ecr:PutImage", "ssm:GetParameter"} {
		if !slices.Contains(called, must) {
			t.Fatalf("the scan missed %s (found %v): fix the scanner before trusting this test", must, called)
		}
	}
	for _, a := range slices.Concat(called, iam.RegistryActions) {
		if !p.Allows(a) {
			t.Errorf("policy.json does not allow %s, which the code calls", a)
		}
	}
}

func TestPolicyGrantsNothingUnused(t *testing.T) {
	used := slices.Concat(calledActions(t), iam.RegistryActions, iam.ImpliedActions)
	for _, s := range load(t).Statement {
		for _, a := range s.Action {
			if strings.Contains(a, "*") || !slices.Contains(used, a) {
				t.Errorf("statement %s grants %s, which nothing calls", s.Sid, a)
			}
		}
	}
}

func TestCreateCallsRequireTheRequestTag(t *testing.T) {
	p := load(t)
	created := map[string][]string{
		"ec2:RunInstances":        {"instance/", "volume/", "network-interface/"},
		"ec2:CreateSecurityGroup": {"security-group/"},
		"ec2:ImportKeyPair":       {"key-pair/"},
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
}

func TestChangesRequireTheResourceTag(t *testing.T) {
	p := load(t)
	for _, action := range []string{"ec2:TerminateInstances", "ec2:DeleteSecurityGroup", "ec2:DeleteKeyPair", "ec2:DeleteVolume", "ec2:AuthorizeSecurityGroupIngress"} {
		for _, s := range p.Allowing(action) {
			for _, r := range s.Resource {
				if !strings.HasSuffix(r, ":security-group-rule/*") && !s.HasCondition("aws:ResourceTag/deploydrill:created-by") {
					t.Errorf("%s: %s on %s without the created-by resource tag", s.Sid, action, r)
				}
			}
		}
	}
}

func TestECRIsScopedToTheRepository(t *testing.T) {
	for _, s := range load(t).Statement {
		for _, a := range s.Action {
			if !strings.HasPrefix(a, "ecr:") || a == "ecr:GetAuthorizationToken" {
				continue
			}
			if !slices.Equal(s.Resource, []string{"arn:aws:ecr:*:*:repository/deploydrill"}) {
				t.Errorf("%s: %s on %v, want only the drill's repository", s.Sid, a, s.Resource)
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
