package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/testimage"
)

// hostDocker runs the docker CLI on the host against the lab's daemon, with the lab user's config
// dir so the host's /root/.docker stays untouched.
func hostDocker(ctx context.Context, inst *Instance, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+inst.DockerHost(), "DOCKER_CONFIG="+inst.DockerConfigDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// dockerLoad puts img into the lab's daemon as deploydrill-test:stale without a registry.
func dockerLoad(ctx context.Context, inst *Instance, img v1.Image) error {
	tag, err := name.NewTag("deploydrill-test:stale")
	if err != nil {
		return err
	}
	file := filepath.Join(inst.names.stateDir, "image.tar")
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		return err
	}
	_, err = hostDocker(ctx, inst, "load", "--input", file)
	return err
}

// hostSnapshot is what a lab must never change on the host.
type hostSnapshot map[string]string

var watchedPaths = []string{
	"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/sudoers", "/etc/docker", "/root/.docker",
	"/run/containerd", "/run/docker", "/var/run/docker.sock", "/var/lib/docker", "/var/lib/containerd",
}

func snapshotHost(t *testing.T) hostSnapshot {
	t.Helper()
	s := hostSnapshot{}
	for _, p := range watchedPaths {
		s[p] = describe(p)
	}
	return s
}

// describe is a file's content hash, a directory's listing, or "absent".
func describe(p string) string {
	st, err := os.Stat(p)
	if err != nil {
		return "absent"
	}
	if st.IsDir() {
		entries, _ := os.ReadDir(p)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return "dir " + strings.Join(names, ",")
	}
	data, _ := os.ReadFile(p)
	return fmt.Sprintf("file %x", sha256.Sum256(data))
}

// assertNothingLeft checks that no trace of the lab remains and the host is as it was.
func assertNothingLeft(t *testing.T, n names, before hostSnapshot) {
	t.Helper()
	if _, err := os.Stat("/run/netns/" + n.netns); !os.IsNotExist(err) {
		t.Errorf("network namespace %s left (%v)", n.netns, err)
	}
	if _, err := os.Stat("/sys/class/net/" + n.vethHost); !os.IsNotExist(err) {
		t.Errorf("veth %s left (%v)", n.vethHost, err)
	}
	if pids, err := labPIDs(n); err != nil || len(pids) > 0 {
		t.Errorf("processes left: %v (%v)", pids, err)
	}
	mounts, err := cgroupMounts()
	if err != nil || len(mounts) == 0 {
		t.Errorf("no cgroup mounts found (%v): the cgroup check proves nothing", err)
	}
	for _, m := range mounts {
		if _, err := os.Stat(filepath.Join(m, n.cgroup)); !os.IsNotExist(err) {
			t.Errorf("cgroup folder %s left (%v)", filepath.Join(m, n.cgroup), err)
		}
	}
	if _, err := os.Stat(n.stateDir); !os.IsNotExist(err) {
		t.Errorf("state dir %s left (%v)", n.stateDir, err)
	}
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mountinfo), n.stateDir) {
		t.Errorf("mounts under %s left", n.stateDir)
	}
	for p, was := range before {
		if now := describe(p); now != was {
			t.Errorf("the lab changed %s on the host: was %q, now %q", p, was, now)
		}
	}
}

func closeLab(t *testing.T, inst *Instance) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := inst.Close(ctx); err != nil {
		t.Error(err)
	}
}

func newClientKey(t testing.TB) (ssh.Signer, []byte) {
	t.Helper()
	s, _ := testenv.SSHKey(t)
	return s, ssh.MarshalAuthorizedKey(s.PublicKey())
}

func newHostKey(t *testing.T) ([]byte, ssh.PublicKey) {
	t.Helper()
	s, keyPEM := testenv.SSHKey(t)
	return keyPEM, s.PublicKey()
}

func pushTestImage(t *testing.T, registryHost, version, token string) remote.ImageRef {
	t.Helper()
	img, err := testimage.Build(t.Context(), version)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(registryHost+"/deploydrill:"+version, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcr.Write(tag, img, ggcr.WithContext(t.Context()), ggcr.WithAuth(&authn.Basic{Username: "AWS", Password: token})); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := remote.ParseImageRef(registryHost + "/deploydrill@" + digest.String())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

var probe = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// waitHealthy polls url until /health says ok and returns the version it reports.
func waitHealthy(t *testing.T, url string) string {
	t.Helper()
	var last error
	for ctx := pollContext(t); ; {
		resp, err := probe.Get(url)
		if err == nil {
			var body struct{ Status, Version string }
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 && body.Status == "ok" {
				return body.Version
			}
			err = fmt.Errorf("status %d, body %+v, %v", resp.StatusCode, body, err)
		}
		last = err
		if !pollWait(ctx) {
			t.Fatalf("timed out waiting for %s to be healthy: last: %v", url, last)
		}
	}
}

// waitRefused polls url until the connection is refused: the app is down for real.
func waitRefused(t *testing.T, url string) {
	t.Helper()
	for ctx := pollContext(t); ; {
		resp, err := probe.Get(url)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err == nil {
			resp.Body.Close()
		}
		if !pollWait(ctx) {
			t.Fatalf("timed out waiting for %s to refuse connections: last: %v", url, err)
		}
	}
}

func pollContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pollWait(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(20 * time.Millisecond):
		return true
	}
}
