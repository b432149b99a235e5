package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

var errNotRoot = errors.New("the lab needs root (network namespaces, mounts, cgroups)")

// Available says what this machine lacks to run a lab, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	for _, bin := range []string{"ip", "nsenter", "unshare", "mount", "dockerd", "containerd", "runc", "iptables", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("lab needs %s in PATH (apt-get install -y iproute2 util-linux docker.io containerd runc iptables): %w", bin, err)
		}
	}
	if _, err := os.Stat(sshdPath()); err != nil {
		return fmt.Errorf("lab needs sshd (apt-get install -y openssh-server): %w", err)
	}
	return nil
}

// Require stops a test that cannot run a lab here: it fails in CI (CI must run it) and skips,
// saying why, elsewhere.
func Require(t testing.TB) {
	t.Helper()
	testenv.SkipShort(t, "the netns lab")
	if err := Available(); err != nil {
		testenv.Require(t, "the netns lab", err.Error())
	}
}
