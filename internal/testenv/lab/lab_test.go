package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/internal/testenv/testimage"
)

// TestDeployOverSSHInTheLab is the whole path the AWS target takes, against the lab: SSH in with
// the pinned host key, docker login with the token on stdin, pull by digest, run with -p 80:5000,
// probe from the host, stop, and leave nothing behind.
func TestDeployOverSSHInTheLab(t *testing.T) {
	Require(t)
	ctx := t.Context()
	host := snapshotHost(t)
	client, authorized := newClientKey(t)
	hostKeyPEM, hostKey := newHostKey(t)

	start := time.Now()
	inst, err := Start(ctx, Config{Name: "e2e", Index: 1, HostKeyPEM: hostKeyPEM, AuthorizedKeys: authorized, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	labStart := time.Since(start)
	closed := false
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab logs:\n%s", inst.Logs())
		}
		if !closed {
			closeLab(t, inst)
		}
	})
	if !bytes.Equal(inst.HostKey().Marshal(), hostKey.Marshal()) {
		t.Fatal("the lab's sshd does not use the host key it was given")
	}

	const token = "lab-ecr-token-6f1e0c"
	reg, err := StartRegistry(inst.HostAddr()+":5000", "AWS", token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close(context.WithoutCancel(ctx)) })
	image := pushTestImage(t, reg.Host, "v1", token)

	r, err := remote.Dial(ctx, remote.Config{Addr: inst.SSHAddr(), User: inst.User(), Signer: client, HostKey: inst.HostKey(), RetryFor: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	run := func(cmd remote.Command, opts ...remote.RunOption) string {
		t.Helper()
		out, err := r.Run(ctx, cmd, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}

	if who := run(remote.NewCommand("id", "-un")); who != "ubuntu" {
		t.Errorf("the session runs as %q, want ubuntu", who)
	}
	if run(remote.NewCommand("id", "-u")) == "0" {
		t.Error("the ubuntu user is root; the real AMI user is not")
	}
	run(remote.ServerVersion())

	t.Run("a wrong registry token is refused", func(t *testing.T) {
		_, err := r.Run(ctx, remote.Login(reg.Host, "AWS"), remote.WithSecretStdin("wrong-token"))
		t.Logf("wrong token: %v", err)
		if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
			t.Fatalf("login with a wrong token: %v", err)
		}
	})
	run(remote.Login(reg.Host, "AWS"), remote.WithSecretStdin(token))
	if data, _ := os.ReadFile(filepath.Join(inst.DockerConfigDir(), "config.json")); !strings.Contains(string(data), reg.Host) {
		t.Errorf("docker login did not store credentials in the lab's DOCKER_CONFIG: %s", data)
	}

	t.Run("pulling a digest the registry lacks fails clearly", func(t *testing.T) {
		missing, _ := remote.ParseImageRef(reg.Host + "/deploydrill@sha256:" + strings.Repeat("0", 64))
		_, err := r.Run(ctx, remote.Pull(missing))
		t.Logf("missing digest: %v", err)
		if err == nil || !strings.Contains(err.Error(), "docker pull "+missing.String()) || !strings.Contains(err.Error(), "manifest unknown") {
			t.Fatalf("pull of a missing digest: %v", err)
		}
	})

	start = time.Now()
	run(remote.Pull(image))
	pull := time.Since(start)
	run(remote.ImagePresent(image))

	app := remote.Container{Name: "deploydrill-app", Image: image, HostPort: 80, ContainerPort: testimage.Port,
		Labels: map[string]string{"deploydrill.version": "v1"}}
	url := "http://" + inst.Addr() + "/health"
	start = time.Now()
	run(remote.Replace(app))
	version := waitHealthy(t, url)
	runToHealthy := time.Since(start)
	if version != "v1" {
		t.Errorf("/health version = %q, want v1", version)
	}

	start = time.Now()
	run(remote.Stop(app.Name, 10*time.Second))
	waitRefused(t, url)
	stopToRefused := time.Since(start)
	state, err := remote.ParseState([]byte(run(remote.InspectState(app.Name))))
	if err != nil || state.Running || state.Status != "exited" {
		t.Errorf("state after stop = %+v, %v", state, err)
	}

	// Run again over the stopped container of the same name: the rollback's path (pitfall 7).
	start = time.Now()
	run(remote.Replace(app))
	waitHealthy(t, url)
	rerun := time.Since(start)
	run(remote.Logout(reg.Host))

	r.Close()
	start = time.Now()
	closeLab(t, inst)
	closed = true
	teardownTime := time.Since(start)
	assertNothingLeft(t, inst.names, host)

	t.Logf("figures: lab start %s (network %s, daemons %s), pull %s, run->healthy %s, stop->refused %s, re-run over stopped->healthy %s, teardown %s",
		labStart.Round(time.Millisecond), inst.Timings.Network.Round(time.Millisecond), inst.Timings.Daemons.Round(time.Millisecond),
		pull.Round(time.Millisecond), runToHealthy.Round(time.Millisecond), stopToRefused.Round(time.Millisecond),
		rerun.Round(time.Millisecond), teardownTime.Round(time.Millisecond))
}
