package ec2_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/internal/golden"
)

// Fixture keys from the seeds 0x01.. (host) and 0x02.. (client): rendering is pure, so the
// golden files are stable. Never use them for anything else.
const (
	testHostPEM = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz
c2gtZWQyNTUxOQAAACCKiOPddAnxlf1S2y08ul1yymcJvx2UEhvzdIgBtA9vXAAA
AKDzrEE186xBNQAAAAtzc2gtZWQyNTUxOQAAACCKiOPddAnxlf1S2y08ul1yymcJ
vx2UEhvzdIgBtA9vXAAAAEABAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB
AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29cAAAAGGRlcGxveWRyaWxs
IHRlc3QgZml4dHVyZQECAwQF
-----END OPENSSH PRIVATE KEY-----
`
	testHostPublic   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c deploydrill-host"
	testClientPublic = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU deploydrill-20250601-120000-ab12"
)

func testUserData() ec2.UserData {
	return ec2.UserData{
		RunID:          "20250601-120000-ab12",
		User:           "ubuntu",
		AuthorizedKey:  testClientPublic,
		HostPrivateKey: testHostPEM,
		HostPublicKey:  testHostPublic,
		MaxLifetime:    30 * time.Minute,
	}
}

func TestUserDataRendersCloudConfig(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		edit   func(*ec2.UserData)
	}{
		{"the default user gets docker and the pinned keys", "userdata-ubuntu.golden", func(*ec2.UserData) {}},
		{"another remote user is created with the same key", "userdata-drill.golden", func(u *ec2.UserData) { u.User = "drill" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := testUserData()
			tt.edit(&u)
			got, err := u.Render()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.golden), got)

			var doc map[string]any
			if err := yaml.Unmarshal(got, &doc); err != nil {
				t.Fatalf("user-data is not valid YAML: %v", err)
			}
			if !strings.HasPrefix(string(got), "#cloud-config\n") {
				t.Error("cloud-init ignores user-data without the #cloud-config header")
			}
			keys := doc["ssh_keys"].(map[string]any)
			if keys["ed25519_private"] != testHostPEM {
				t.Errorf("host key did not survive YAML: %q", keys["ed25519_private"])
			}
			if doc["ssh_genkeytypes"] == nil || len(doc["ssh_genkeytypes"].([]any)) != 0 {
				t.Error("cloud-init would generate host keys besides the pinned one")
			}
		})
	}
}

func TestUserDataRefusesWhatCannotBoot(t *testing.T) {
	tests := []struct {
		name string
		edit func(*ec2.UserData)
	}{
		{"a user name cloud-init cannot create", func(u *ec2.UserData) { u.User = "Robert'); DROP" }},
		{"an rsa client key", func(u *ec2.UserData) { u.AuthorizedKey = "ssh-rsa AAAA x" }},
		{"a host key that is not a PEM block", func(u *ec2.UserData) { u.HostPrivateKey = "secret" }},
		{"a lifetime shorter than a boot", func(u *ec2.UserData) { u.MaxLifetime = 30 * time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := testUserData()
			tt.edit(&u)
			if _, err := u.Render(); err == nil {
				t.Error("rendered anyway")
			}
		})
	}
}
