package ec2

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// UserData is the cloud-init configuration of the drill host. It carries the host's private
// SSH key, so the rendered document is a secret: it goes to RunInstances and nowhere else.
type UserData struct {
	RunID          string
	User           string        // remote user, put in the docker group; "ubuntu" is the AMI's default user
	AuthorizedKey  string        // the run's client public key, one authorized_keys line
	HostPrivateKey string        // OpenSSH PEM block of the pinned host key
	HostPublicKey  string        // its public half, one line
	MaxLifetime    time.Duration // the dead-man's switch powers the host off after this
}

// DefaultUser is the Ubuntu AMI's default user.
const DefaultUser = "ubuntu"

var userPattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// Render writes the #cloud-config document. It is a pure function of u (golden-tested).
//
// Host keys: ssh_deletekeys drops the image's keys and ssh_genkeytypes: [] stops new ones, so
// the only host key is the one the runner pinned. Dead-man's switch: a systemd timer started at
// boot powers the host off after MaxLifetime; with InstanceInitiatedShutdownBehavior=terminate
// that terminates it even when the runner died. (A timer rather than `shutdown +N`, whose
// /run/nologin would lock the remote user out for the last five minutes.)
func (u UserData) Render() ([]byte, error) {
	switch {
	case !userPattern.MatchString(u.User):
		return nil, fmt.Errorf("user-data: remote user %q is not a valid login name", u.User)
	case !strings.HasPrefix(u.AuthorizedKey, "ssh-ed25519 "), !strings.HasPrefix(u.HostPublicKey, "ssh-ed25519 "):
		return nil, fmt.Errorf("user-data: keys must be ed25519 authorized_keys lines")
	case !strings.Contains(u.HostPrivateKey, "-----BEGIN OPENSSH PRIVATE KEY-----"):
		return nil, fmt.Errorf("user-data: host private key must be an OpenSSH PEM block")
	case u.MaxLifetime < time.Minute:
		return nil, fmt.Errorf("user-data: max lifetime %s is shorter than a boot", u.MaxLifetime)
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("#cloud-config")
	line("# deploydrill run %s: a throwaway drill host; it powers itself off after %s.", u.RunID, u.MaxLifetime)
	line("ssh_deletekeys: true")
	line("ssh_genkeytypes: []")
	line("ssh_keys:")
	line("  ed25519_private: |")
	for _, l := range strings.Split(strings.TrimSpace(u.HostPrivateKey), "\n") {
		line("    %s", l)
	}
	line("  ed25519_public: %s", u.HostPublicKey)
	line("ssh_authorized_keys:")
	line("  - %s", u.AuthorizedKey)
	if u.User != DefaultUser {
		line("users:")
		line("  - default")
		line("  - name: %s", u.User)
		line("    shell: /bin/bash")
		line("    lock_passwd: true")
		// As Ubuntu's default user has: the fault kinds partition, slow and crashloop change the
		// host's firewall and processes with sudo -n.
		line("    sudo: ALL=(ALL) NOPASSWD:ALL")
		line("    ssh_authorized_keys:")
		line("      - %s", u.AuthorizedKey)
	}
	line("bootcmd:")
	line("  - [systemd-run, --unit=deploydrill-dead-mans-switch, --on-active=%ds, /usr/bin/systemctl, poweroff]", int(u.MaxLifetime.Seconds()))
	line("package_update: true")
	line("packages:")
	line("  - docker.io")
	line("runcmd:")
	line("  - [usermod, --append, --groups, docker, %s]", u.User)
	line("  - [systemctl, enable, --now, docker.service]")
	return []byte(b.String()), nil
}
