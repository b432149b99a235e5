package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/infra/iam"
)

// runIAMCommand runs `go run ./ci iam ARGS` with no defaults from the environment (a GitHub
// runner sets GITHUB_REPOSITORY).
func runIAMCommand(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	for _, env := range []string{"DRILL_AWS_ACCOUNT", "GITHUB_REPOSITORY", "DRILL_AWS_REGION", "DRILL_REPOSITORY", "DRILL_HISTORY"} {
		t.Setenv(env, "")
	}
	var out, errOut bytes.Buffer
	err = iamCommand().run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustRender(t *testing.T, render func() ([]byte, error)) string {
	t.Helper()
	doc, err := render()
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

func TestIAMCommandPrintsBothPoliciesApart(t *testing.T) {
	stdout, stderr, err := runIAMCommand(t, "--account", "123456789012", "--repo", "octo-org/app", "--region", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	role := iam.Role{Account: "123456789012", Repo: "octo-org/app", Branch: "main", Region: "eu-west-1", Repository: "deploydrill"}
	sections := strings.Split(stdout, "# ")
	if len(sections) != 3 || sections[0] != "" {
		t.Fatalf("want two sections each under a # header, got:\n%s", stdout)
	}
	for i, want := range []string{mustRender(t, role.Trust), mustRender(t, role.Permissions)} {
		header, doc, _ := strings.Cut(sections[i+1], "\n")
		if strings.TrimSpace(doc) != strings.TrimSpace(want) {
			t.Errorf("section %q is not the rendered policy:\n%s", header, doc)
		}
		if !json.Valid([]byte(doc)) {
			t.Errorf("section %q is not JSON on its own", header)
		}
	}
	if !strings.Contains(stderr, "repo:octo-org/app:ref:refs/heads/main") || !strings.Contains(stderr, "eu-west-1") {
		t.Errorf("stderr does not say what the policies admit:\n%s", stderr)
	}
}

func TestIAMCommandPrintsOnePolicyAsPureJSON(t *testing.T) {
	role := iam.Role{Account: "123456789012", Repo: "octo-org@42/app@4242", Environment: "aws-drill", Repository: "team/drill"}
	tests := []struct {
		name string
		flag string
		want string
	}{
		{"--trust is the trust policy alone", "--trust", mustRender(t, role.Trust)},
		{"--permissions is the permissions policy alone", "--permissions", mustRender(t, role.Permissions)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runIAMCommand(t, tt.flag, "--account", role.Account, "--repo", role.Repo,
				"--environment", role.Environment, "--repository", role.Repository)
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.want)
			}
		})
	}
}

func TestIAMCommandReadsDefaultsFromTheEnvironment(t *testing.T) {
	t.Setenv("GITHUB_REPOSITORY", "octo-org/from-env")
	t.Setenv("DRILL_AWS_ACCOUNT", "210987654321")
	var stdout, stderr bytes.Buffer
	if err := iamCommand().run(t.Context(), []string{"--trust"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"repo:octo-org/from-env:ref:refs/heads/main"`, "arn:aws:iam::210987654321:oidc-provider/"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("trust policy lacks %s:\n%s", want, stdout.String())
		}
	}
}

func TestIAMCommandScopesS3ToTheHistory(t *testing.T) {
	base := iam.Role{Account: "123456789012", Repo: "octo-org/app", Branch: "main", Region: "eu-west-1", Repository: "deploydrill"}
	withHistory := base
	withHistory.History = iam.S3Location{Bucket: "octo-drill-history", Prefix: "team/app"}
	tests := []struct {
		name    string
		env     string // DRILL_HISTORY
		args    []string
		role    iam.Role
		stderr  string
		allowS3 bool
	}{
		{"--history s3://BUCKET/PREFIX", "", []string{"--history", "s3://octo-drill-history/team/app"}, withHistory, "history in s3://octo-drill-history/team/app", true},
		{"DRILL_HISTORY s3://BUCKET/PREFIX/", "s3://octo-drill-history/team/app/", nil, withHistory, "history in s3://octo-drill-history/team/app", true},
		{"no history", "", nil, base, "no S3 permissions", false},
		{"DRILL_HISTORY naming a file, as the drill may have it", "drill-history.jsonl", nil, base, "no S3 permissions", false},
		{"DRILL_HISTORY off", "off", nil, base, "no S3 permissions", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := slices.Concat([]string{"--permissions", "--account", base.Account, "--repo", base.Repo, "--region", base.Region}, tt.args)
			var stdout, stderr bytes.Buffer
			for _, env := range []string{"DRILL_AWS_ACCOUNT", "GITHUB_REPOSITORY", "DRILL_AWS_REGION", "DRILL_REPOSITORY"} {
				t.Setenv(env, "")
			}
			t.Setenv("DRILL_HISTORY", tt.env)
			if err := iamCommand().run(t.Context(), args, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			if want := mustRender(t, tt.role.Permissions); stdout.String() != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), want)
			}
			if got := strings.Contains(stdout.String(), `"s3:`); got != tt.allowS3 {
				t.Errorf("names S3 actions: %v, want %v", got, tt.allowS3)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr does not say %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}

func TestIAMCommandRefusesBadInputAsUsage(t *testing.T) {
	ok := []string{"--account", "123456789012", "--repo", "octo-org/app"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no account", []string{"--repo", "octo-org/app"}, "--account is required"},
		{"no repository", []string{"--account", "123456789012"}, "--repo is required"},
		{"an account that is not 12 digits", []string{"--account", "1234", "--repo", "octo-org/app"}, `account "1234"`},
		{"every repository of an owner", []string{"--account", "123456789012", "--repo", "octo-org/*"}, `"*" is not a GitHub repository name`},
		{"a wildcard branch", slices.Concat(ok, []string{"--branch", "*"}), `branch "*"`},
		{"a branch and an environment", slices.Concat(ok, []string{"--branch", "main", "--environment", "prod"}), "give one"},
		{"a mistyped region", slices.Concat(ok, []string{"--region", "eu-wset-1"}), "did you mean eu-west-1"},
		{"a region outside the aws partition", slices.Concat(ok, []string{"--region", "cn-north-1"}), "outside the aws partition"},
		{"an ECR repository wildcard", slices.Concat(ok, []string{"--repository", "*"}), `repository "*"`},
		{"a stray argument", slices.Concat(ok, []string{"trust.json"}), `unexpected argument "trust.json"`},
		{"a history bucket that breaks S3's naming rules", slices.Concat(ok, []string{"--history", "s3://Drill_History/app"}), `--history: s3://Drill_History/app: bucket "Drill_History": not an S3 bucket name`},
		{"a history in S3 without a bucket", slices.Concat(ok, []string{"--history", "s3:///app"}), "no bucket"},
		{"a history prefix with a wildcard", slices.Concat(ok, []string{"--history", "s3://drill-history/app*"}), `prefix "app*"`},
		{"a history file", slices.Concat(ok, []string{"--history", "drill-history.jsonl"}), "only a history in S3 (s3://BUCKET/PREFIX) needs permissions"},
		{"a history file, given with =", slices.Concat(ok, []string{"--history=drill-history.jsonl"}), "only a history in S3 (s3://BUCKET/PREFIX) needs permissions"},
		{"a history elsewhere than S3", slices.Concat(ok, []string{"--history", "gs://drill-history/app"}), "only a history in S3 (s3://BUCKET/PREFIX) needs permissions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runIAMCommand(t, tt.args...)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a usage error saying %s", err, tt.want)
			}
			if stdout != "" {
				t.Errorf("printed a policy for bad input:\n%s", stdout)
			}
		})
	}
}

func TestIAMCommandNamesDRILL_HISTORYWhenItIsBad(t *testing.T) {
	for _, env := range []string{"DRILL_AWS_ACCOUNT", "GITHUB_REPOSITORY", "DRILL_AWS_REGION", "DRILL_REPOSITORY"} {
		t.Setenv(env, "")
	}
	t.Setenv("DRILL_HISTORY", "s3://drill..history/app")
	var stdout bytes.Buffer
	err := iamCommand().run(t.Context(), []string{"--account", "123456789012", "--repo", "octo-org/app"}, &stdout, new(bytes.Buffer))
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "DRILL_HISTORY") || !strings.Contains(err.Error(), "two adjacent dots") {
		t.Errorf("error %v, want a usage error naming DRILL_HISTORY and what is wrong with it", err)
	}
	if stdout.Len() > 0 {
		t.Errorf("printed a policy for a bad history:\n%s", stdout.String())
	}
}

func TestIAMCommandHelpExplainsEveryFlag(t *testing.T) {
	_, stderr, err := runIAMCommand(t, "--help")
	if !errors.Is(err, flagHelp) {
		t.Fatalf("error %v, want flagHelp", err)
	}
	for _, want := range []string{"-account", "-repo", "-branch", "-environment", "-region", "-repository", "-history", "-trust", "-permissions",
		"env DRILL_AWS_ACCOUNT", "env GITHUB_REPOSITORY", "env DRILL_HISTORY", "sub_claim_prefix", `(default "main")`,
		"s3://BUCKET/PREFIX", "s3:ListBucket on BUCKET for the prefix PREFIX/", "Only an S3 history needs permissions"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("help lacks %q:\n%s", want, stderr)
		}
	}
}
