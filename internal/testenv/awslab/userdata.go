package awslab

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
	"golang.org/x/crypto/ssh"
)

// defaultUser is the Ubuntu AMI's default user: cloud-init gives it the top-level
// ssh_authorized_keys.
const defaultUser = "ubuntu"

// bootConfig is what an instance takes from its user-data, the way cloud-init reads it.
type bootConfig struct {
	user           string
	hostKeyPEM     []byte // empty: cloud-init would generate a host key nobody could pin
	authorizedKeys []byte // the user's authorized_keys file
	// sudo: passwordless sudo, which cloud-init gives the AMI's default user and a users[] entry
	// only through a sudo rule with NOPASSWD (its password is locked, so sudo -n needs that).
	sudo bool
}

// cloudConfig is the part of #cloud-config the lab honours.
type cloudConfig struct {
	SSHKeys        map[string]string `yaml:"ssh_keys"`
	AuthorizedKeys []string          `yaml:"ssh_authorized_keys"`
	Users          []any             `yaml:"users"`
	Packages       []any             `yaml:"packages"`
	RunCmd         []any             `yaml:"runcmd"`
}

// parseUserData reads the host key, the login user and its keys, and checks that the document
// would give that user docker without sudo on a real Ubuntu instance: docker installed, the
// user in the docker group (by runcmd usermod or users[].groups).
func parseUserData(data []byte) (bootConfig, error) {
	if !bytes.HasPrefix(data, []byte("#cloud-config\n")) {
		return bootConfig{}, errors.New("user-data: not a #cloud-config document")
	}
	var cc cloudConfig
	if err := yaml.Unmarshal(data, &cc); err != nil {
		return bootConfig{}, fmt.Errorf("user-data: %w", err)
	}
	bc := bootConfig{user: defaultUser, hostKeyPEM: []byte(cc.SSHKeys["ed25519_private"])}
	keys := cc.AuthorizedKeys
	var groups []string
	for _, u := range cc.Users {
		entry, ok := u.(map[string]any)
		if !ok {
			continue // "default": the AMI's own user
		}
		name, _ := entry["name"].(string)
		if name == "" {
			return bootConfig{}, errors.New("user-data: a users entry has no name")
		}
		bc.user, keys, groups = name, stringItems(entry["ssh_authorized_keys"]), groupList(entry["groups"])
		bc.sudo = slices.ContainsFunc(sudoRules(entry["sudo"]), func(r string) bool { return strings.Contains(r, "NOPASSWD:") })
	}
	if bc.user == defaultUser {
		bc.sudo = true // the Ubuntu AMI's /etc/sudoers.d/90-cloud-init-users
	}
	for _, k := range keys {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			return bootConfig{}, fmt.Errorf("user-data: authorized key of %s: %w", bc.user, err)
		}
		bc.authorizedKeys = append(bc.authorizedKeys, k+"\n"...)
	}
	if len(bc.authorizedKeys) == 0 {
		return bootConfig{}, fmt.Errorf("user-data: no ssh_authorized_keys for %s: nobody could log in", bc.user)
	}
	if len(bc.hostKeyPEM) > 0 {
		if _, err := ssh.ParsePrivateKey(bc.hostKeyPEM); err != nil {
			return bootConfig{}, fmt.Errorf("user-data: ssh_keys.ed25519_private: %w", err)
		}
	}
	if !slices.ContainsFunc(stringItems(cc.Packages), func(p string) bool { return strings.HasPrefix(p, "docker") }) {
		return bootConfig{}, errors.New("user-data: installs no docker package")
	}
	if !slices.Contains(groups, "docker") && !addsToDockerGroup(cc.RunCmd, bc.user) {
		return bootConfig{}, fmt.Errorf("user-data: never puts %s in the docker group: docker would need sudo", bc.user)
	}
	return bc, nil
}

// addsToDockerGroup looks for `usermod ... docker ... <user>` in runcmd (list or shell form).
func addsToDockerGroup(runcmd []any, user string) bool {
	for _, c := range runcmd {
		var argv []string
		switch c := c.(type) {
		case string:
			argv = strings.Fields(c)
		case []any:
			argv = stringItems(c)
		}
		if slices.Contains(argv, "usermod") && slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, "docker") }) && slices.Contains(argv, user) {
			return true
		}
	}
	return false
}

// sudoRules reads users[].sudo: a rule, a list of rules, or false (none).
func sudoRules(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	return stringItems(v)
}

// groupList reads users[].groups, a list or a comma-separated string.
func groupList(v any) []string {
	if s, ok := v.(string); ok {
		var out []string
		for _, g := range strings.Split(s, ",") {
			out = append(out, strings.TrimSpace(g))
		}
		return out
	}
	return stringItems(v)
}

// stringItems keeps the string items of a YAML list.
func stringItems(v any) []string {
	items, _ := v.([]any)
	var out []string
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
