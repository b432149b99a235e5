package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/internal/testenv/testimage"
)

// TestStartRemovesALabLeftByAKilledRun kills a process that runs a lab with a container in it, as
// SIGKILL of a test would, and checks that the next Start of the same name clears it all (and
// that it refused to while the owner lived).
func TestStartRemovesALabLeftByAKilledRun(t *testing.T) {
	Require(t)
	host := snapshotHost(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	orphan := exec.Command(self, "-test.run=^$")
	orphan.Env = append(os.Environ(), helperEnv+"=stale")
	out, err := orphan.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	orphan.Stderr = os.Stderr
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	var ready struct{ ContainerPID int }
	if err := json.NewDecoder(out).Decode(&ready); err != nil {
		_ = orphan.Process.Kill()
		t.Fatalf("helper did not report a running lab: %v", err)
	}
	if _, err := Start(t.Context(), Config{Name: "stale", Index: 2}); err == nil || !strings.Contains(err.Error(), "in use by running process") {
		_ = orphan.Process.Kill()
		t.Fatalf("Start of a lab another live process owns: %v, want a refusal", err)
	}
	_ = orphan.Process.Signal(syscall.SIGKILL)
	_ = orphan.Wait()
	if !alive(ready.ContainerPID) {
		t.Fatal("the container died with the killed process, so this test proves nothing")
	}

	inst, err := Start(t.Context(), Config{Name: "stale", Index: 2})
	if err != nil {
		t.Fatal(err)
	}
	if alive(ready.ContainerPID) {
		t.Errorf("container process %d of the stale lab survived Start", ready.ContainerPID)
	}
	closeLab(t, inst)
	closeLab(t, inst) // idempotent
	assertNothingLeft(t, inst.names, host)
}

func TestLabsSideBySide(t *testing.T) {
	Require(t)
	ctx := t.Context()
	client, authorized := newClientKey(t)
	a, err := Start(ctx, Config{Name: "side-a", Index: 3, AuthorizedKeys: authorized})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLab(t, a) })
	b, err := Start(ctx, Config{Name: "side-b", Index: 4, AuthorizedKeys: authorized, User: "root"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLab(t, b) })
	if a.Addr() == b.Addr() || a.HostAddr() == b.HostAddr() {
		t.Fatalf("labs share addresses: %s/%s and %s/%s", a.Addr(), a.HostAddr(), b.Addr(), b.HostAddr())
	}

	t.Run("a lab whose user is root runs docker as root", func(t *testing.T) {
		r := dialLab(t, b, client)
		out, err := r.Run(ctx, remote.Sequence(remote.NewCommand("id", "-u"), remote.ServerVersion()))
		if err != nil || !strings.HasPrefix(string(out), "0\n") {
			t.Fatalf("id -u; docker version = %q, %v", out, err)
		}
	})
	t.Run("a lab user without Sudo has no sudo", func(t *testing.T) {
		r := dialLab(t, a, client)
		_, err := r.Run(ctx, remote.SudoCheck())
		if err == nil || !strings.Contains(err.Error(), "password is required") {
			t.Fatalf("sudo -n true as a user without Sudo: %v, want a password to be required", err)
		}
	})
	t.Run("a lab cannot reach another lab", func(t *testing.T) {
		r := dialLab(t, a, client)
		_, err := r.Run(ctx, remote.NewCommand("timeout", "2", "bash", "-c", "exec 3<>/dev/tcp/"+b.Addr()+"/22"))
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("connecting from %s to %s: %v, want network unreachable", a.Name(), b.Name(), err)
		}
	})
	t.Run("a lab on a taken index is refused and leaves nothing", func(t *testing.T) {
		_, err := Start(ctx, Config{Name: "side-c", Index: 3})
		if err == nil || !strings.Contains(err.Error(), "index 3 is in use") {
			t.Fatalf("a third lab on a taken index: %v", err)
		}
		if _, err := os.Stat("/run/netns/" + namesFor("side-c").netns); !os.IsNotExist(err) {
			t.Errorf("the refused lab left its namespace behind (%v)", err)
		}
	})
}

func dialLab(t *testing.T, inst *Instance, client ssh.Signer) *remote.Runner {
	t.Helper()
	r, err := remote.Dial(t.Context(), remote.Config{Addr: inst.SSHAddr(), User: inst.User(), Signer: client, HostKey: inst.HostKey(), RetryFor: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

const helperEnv = "LAB_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "stale" {
		os.Exit(runStaleHelper())
	}
	os.Exit(m.Run())
}

// runStaleHelper starts a lab with a container running, reports the container's pid on stdout,
// and waits to be killed.
func runStaleHelper() int {
	ctx := context.Background()
	inst, err := Start(ctx, Config{Name: "stale", Index: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	img, err := testimage.Build(ctx, "stale")
	if err == nil {
		err = dockerLoad(ctx, inst, img)
	}
	var pid string
	if err == nil {
		_, err = hostDocker(ctx, inst, "run", "--detach", "--name", "left", "deploydrill-test:stale")
	}
	if err == nil {
		pid, err = hostDocker(ctx, inst, "inspect", "--format", "{{.State.Pid}}", "left")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("{\"ContainerPID\": %s}\n", strings.TrimSpace(pid))
	select {}
}
