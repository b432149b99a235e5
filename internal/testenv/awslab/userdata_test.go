package awslab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/ec2"
)

func TestParseUserData(t *testing.T) {
	hostPEM, hostPub := testKey(t)
	_, clientPub := testKey(t)
	render := func(t *testing.T, user string) string {
		t.Helper()
		doc, err := ec2.UserData{RunID: "r1", User: user, AuthorizedKey: clientPub, HostPrivateKey: hostPEM,
			HostPublicKey: hostPub, MaxLifetime: 30 * time.Minute}.Render()
		if err != nil {
			t.Fatal(err)
		}
		return string(doc)
	}
	tests := []struct {
		name     string
		doc      func(t *testing.T) string
		wantUser string
		wantErr  string
		wantSudo bool
	}{
		{"the default user gets the top-level key and sudo", func(t *testing.T) string { return render(t, "ubuntu") }, "ubuntu", "", true},
		{"a named user is created with its own key and passwordless sudo", func(t *testing.T) string { return render(t, "drill") }, "drill", "", true},
		{"a named user without a sudo rule has none", func(t *testing.T) string {
			return strings.Replace(render(t, "drill"), "    sudo: ALL=(ALL) NOPASSWD:ALL\n", "", 1)
		}, "drill", "", false},
		{"a sudo rule that asks for the locked password gives no sudo -n", func(t *testing.T) string {
			return strings.Replace(render(t, "drill"), "    sudo: ALL=(ALL) NOPASSWD:ALL\n", "    sudo: [\"ALL=(ALL) ALL\"]\n", 1)
		}, "drill", "", false},
		{"a user never put in the docker group would need sudo", func(t *testing.T) string {
			return strings.Replace(render(t, "drill"), "[usermod, --append, --groups, docker, drill]", "[true]", 1)
		}, "", "never puts drill in the docker group", false},
		{"users[].groups also grants docker", func(t *testing.T) string {
			doc := strings.Replace(render(t, "drill"), "[usermod, --append, --groups, docker, drill]", "[true]", 1)
			return strings.Replace(doc, "    shell: /bin/bash\n", "    shell: /bin/bash\n    groups: [docker]\n", 1)
		}, "drill", "", true},
		{"a document without docker cannot run the app", func(t *testing.T) string {
			return strings.Replace(render(t, "ubuntu"), "  - docker.io\n", "  - curl\n", 1)
		}, "", "installs no docker package", false},
		{"a host nobody may log in to is refused", func(t *testing.T) string {
			return strings.Replace(render(t, "ubuntu"), "  - "+clientPub+"\n", "", 1)
		}, "", "no ssh_authorized_keys", false},
		{"a shell script is not cloud-config", func(*testing.T) string { return "#!/bin/sh\necho hi\n" }, "", "not a #cloud-config", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bc, err := parseUserData([]byte(tt.doc(t)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bc.sudo != tt.wantSudo {
				t.Errorf("sudo %v, want %v", bc.sudo, tt.wantSudo)
			}
			if bc.user != tt.wantUser || string(bc.hostKeyPEM) != hostPEM || strings.TrimSpace(string(bc.authorizedKeys)) != clientPub {
				t.Errorf("got user %q, host key match %v, authorized keys %q", bc.user, string(bc.hostKeyPEM) == hostPEM, bc.authorizedKeys)
			}
		})
	}
}

func TestCountRejected(t *testing.T) {
	rules := "-P INPUT ACCEPT -c 10 600\n-A INPUT -p tcp -m tcp --dport 22 -c 3 180 -j REJECT --reject-with tcp-reset\n"
	if n := countRejected(rules); n != 3 {
		t.Errorf("countRejected = %d, want 3", n)
	}
	if n := countRejected("-P INPUT ACCEPT -c 10 600\n"); n != 0 {
		t.Errorf("countRejected without the rule = %d, want 0", n)
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct{ path, repo, kind, ref string }{
		{"/v2/", "", "", ""},
		{"/v2/_catalog", "", "", ""},
		{"/v2/deploydrill/manifests/v1", "deploydrill", "manifests", "v1"},
		{"/v2/team/app/manifests/sha256:abc", "team/app", "manifests", "sha256:abc"},
		{"/v2/app/blobs/uploads/1234", "app", "blobs", "uploads/1234"},
		{"/v2/app/tags/list", "app", "tags", "list"},
	}
	for _, tt := range tests {
		repo, kind, ref := splitPath(tt.path)
		if repo != tt.repo || kind != tt.kind || ref != tt.ref {
			t.Errorf("splitPath(%q) = %q %q %q, want %q %q %q", tt.path, repo, kind, ref, tt.repo, tt.kind, tt.ref)
		}
	}
}

func testKey(t *testing.T) (privatePEM, authorizedLine string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block)), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " test"
}
