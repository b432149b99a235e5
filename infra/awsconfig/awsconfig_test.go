package awsconfig_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/deploydrill/deploydrill/infra/awsconfig"
)

// isolate points the SDK at an empty world: no profiles, no metadata service, no env keys.
func isolate(t *testing.T, configFile string) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgPath, []byte(configFile), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgPath)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_SSM",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func keys(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
}

func TestLoad(t *testing.T) {
	profile := "[profile drill]\nregion = eu-north-1\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n"
	tests := []struct {
		name       string
		setup      func(t *testing.T)
		opts       awsconfig.Options
		wantRegion string
		wantErr    string
	}{
		{"region from the flag, keys from the environment", keys, awsconfig.Options{Region: "us-east-1"}, "us-east-1", ""},
		{"region from AWS_REGION", func(t *testing.T) { keys(t); t.Setenv("AWS_REGION", "eu-west-2") }, awsconfig.Options{}, "eu-west-2", ""},
		{"region and keys from a profile", func(*testing.T) {}, awsconfig.Options{Profile: "drill"}, "eu-north-1", ""},
		{"the flag beats the profile", func(*testing.T) {}, awsconfig.Options{Profile: "drill", Region: "us-west-2"}, "us-west-2", ""},
		{"no region anywhere", keys, awsconfig.Options{}, "", "pass --region"},
		{"an unknown region", keys, awsconfig.Options{Region: "eu-west-9"}, "", `"eu-west-9": unknown; did you mean eu-west-1?`},
		{"something that is not a region", keys, awsconfig.Options{Region: "Europe"}, "", "not a region name"},
		{"a known region with a custom endpoint", func(t *testing.T) { keys(t); t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566") },
			awsconfig.Options{Region: "eu-west-1"}, "eu-west-1", ""},
		{"a mistyped region with a custom endpoint still gets the suggestion", func(t *testing.T) {
			keys(t)
			t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
		}, awsconfig.Options{Region: "eu-wset-1"}, "", `"eu-wset-1": unknown; did you mean eu-west-1?`},
		{"an unknown region with a service endpoint", func(t *testing.T) { keys(t); t.Setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:4566") },
			awsconfig.Options{Region: "garage-1"}, "", "not a region name"},
		{"no credentials", func(*testing.T) {}, awsconfig.Options{Region: "eu-west-1"}, "", "--target local"},
		{"a missing profile", keys, awsconfig.Options{Profile: "nope", Region: "eu-west-1"}, "", "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t, profile)
			tt.setup(t)
			cfg, err := awsconfig.Load(t.Context(), tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				if strings.Contains(tt.name, "region") && !errors.Is(err, awsconfig.ErrInvalidRegion) {
					t.Errorf("err = %v, want it to wrap ErrInvalidRegion", err)
				}
				return
			}
			if err != nil || cfg.Region != tt.wantRegion {
				t.Fatalf("region %q, %v; want %q", cfg.Region, err, tt.wantRegion)
			}
		})
	}
}

func TestLoadHonoursAWSEndpointURL(t *testing.T) {
	isolate(t, "")
	keys(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
	cfg, err := awsconfig.Load(t.Context(), awsconfig.Options{Region: "eu-west-1"})
	if err != nil || aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:4566" {
		t.Fatalf("base endpoint %v, %v", aws.ToString(cfg.BaseEndpoint), err)
	}
}

func TestParseCIDR(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{"203.0.113.7/32", "203.0.113.7/32", ""},
		{"0.0.0.0/0", "0.0.0.0/0", ""},
		{"2001:db8::/32", "2001:db8::/32", ""},
		{"203.0.113.7", "", "did you mean 203.0.113.7/32?"},
		{"10.1.2.3/8", "", "did you mean 10.0.0.0/8?"},
		{"10.0.0.0/33", "", "malformed CIDR"},
		{"anywhere", "", "malformed CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := awsconfig.ParseCIDR("ssh-cidr", tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--ssh-cidr") {
					t.Fatalf("err = %v, want it to name the flag and mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}
