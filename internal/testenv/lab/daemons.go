package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// mountScript runs as root in the lab's new mount namespace (private propagation) and execs dockerd.
// Fresh sysfs: its net view follows the mounting process's net namespace (pitfall 1), with the
// host's cgroup tree bound back on top. A private tmpfs on /run keeps containerd's shim sockets,
// docker's exec-root and sshd's privsep dir off the host (pitfall 2). Account files are the lab's
// copies. sshd joins this mount namespace once "lab-mounts-ready" is printed.
const mountScript = `set -eu
state=$1
mount --make-rprivate /
mount --rbind /sys/fs/cgroup "$state/cgroup"
mount -t sysfs lab-sysfs /sys
mount --move "$state/cgroup" /sys/fs/cgroup
mount -t tmpfs -o mode=0755 lab-run /run
mkdir -p /run/sshd /run/containerd
for f in passwd group shadow sudoers; do [ ! -e "$state/etc/$f" ] || mount --bind "$state/etc/$f" "/etc/$f"; done
echo lab-mounts-ready >&2
exec dockerd --config-file "$state/daemon.json"
`

// startDaemons writes the lab's files and starts dockerd, then sshd in dockerd's mount namespace.
func (inst *Instance) startDaemons(ctx context.Context) error {
	n, cfg := inst.names, inst.cfg
	for _, d := range []string{"etc", "ssh", "cgroup", "docker", filepath.Join("home", cfg.User)} {
		if err := os.MkdirAll(filepath.Join(n.stateDir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(n.stateDir, 0o755); err != nil { // the user walks through it to its home
		return err
	}
	acct, err := writeAccountFiles(filepath.Join(n.stateDir, "etc"), cfg.User, filepath.Join(n.stateDir, "home", cfg.User))
	if err != nil {
		return fmt.Errorf("account files: %w", err)
	}
	if err := writeSudoers(filepath.Join(n.stateDir, "etc"), cfg.User, cfg.Sudo); err != nil {
		return fmt.Errorf("sudoers: %w", err)
	}
	if err := inst.writeSSHDFiles(); err != nil {
		return fmt.Errorf("sshd files: %w", err)
	}
	if err := inst.writeDockerFiles(acct); err != nil {
		return fmt.Errorf("docker files: %w", err)
	}

	dockerd := launch("dockerd", "nsenter", "--net=/run/netns/"+n.netns, "--",
		"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", mountScript, "sh", n.stateDir)
	inst.daemons = append(inst.daemons, dockerd)
	if err := dockerd.err; err != nil {
		return err
	}
	if err := dockerd.waitFor(ctx, "lab-mounts-ready", 10*time.Second); err != nil {
		return err
	}
	sshd := launch("sshd", "nsenter", "--net=/run/netns/"+n.netns, "--mount=/proc/"+strconv.Itoa(dockerd.cmd.Process.Pid)+"/ns/mnt", "--",
		sshdPath(), "-D", "-e", "-f", filepath.Join(n.stateDir, "ssh", "sshd_config"))
	inst.daemons = append(inst.daemons, sshd)
	if err := sshd.err; err != nil {
		return err
	}
	// dockerd needs 0.4-0.7 s, sshd < 0.1 s: they start together and the wait is the slower one.
	if err := sshd.waitFor(ctx, "Server listening on", 10*time.Second); err != nil {
		return err
	}
	return dockerd.waitFor(ctx, "API listen on", 60*time.Second)
}

func (inst *Instance) writeSSHDFiles() error {
	n, cfg := inst.names, inst.cfg
	keyPEM := cfg.HostKeyPEM
	if len(keyPEM) == 0 {
		var err error
		if _, keyPEM, err = testenv.NewSSHKey(); err != nil {
			return err
		}
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	inst.hostKey = signer.PublicKey()
	for rest := cfg.AuthorizedKeys; len(bytes.TrimSpace(rest)) > 0; {
		if _, _, _, rest, err = ssh.ParseAuthorizedKey(rest); err != nil {
			return fmt.Errorf("authorized keys: %w", err)
		}
	}
	dir := filepath.Join(n.stateDir, "ssh")
	if err := os.WriteFile(filepath.Join(dir, "host_key"), keyPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), cfg.AuthorizedKeys, 0o644); err != nil {
		return err
	}
	// SetEnv points plain `docker ...` in a session at the lab's daemon and the user's own config
	// dir, so nothing reads or writes the host's /root/.docker.
	config := testenv.SSHDConfig(instanceIP(cfg.Index)+":22", filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), cfg.User,
		"DOCKER_HOST="+inst.DockerHost(), "DOCKER_CONFIG="+n.dockerConfig(cfg.User))
	return os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(config), 0o644)
}

func (inst *Instance) writeDockerFiles(acct account) error {
	n, cfg := inst.names, inst.cfg
	dockerConfig := n.dockerConfig(cfg.User)
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		return err
	}
	if cfg.User != "root" {
		for _, p := range []string{filepath.Dir(dockerConfig), dockerConfig} {
			if err := os.Chown(p, acct.uid, acct.gid); err != nil {
				return err
			}
		}
	}
	daemon := map[string]any{
		"hosts":                 []string{inst.DockerHost()},
		"data-root":             filepath.Join(n.stateDir, "docker"),
		"deprecated-key-path":   filepath.Join(n.stateDir, "key.json"), // else /etc/docker/key.json
		"bip":                   bridgeCIDR(cfg.Index),
		"default-address-pools": []map[string]any{{"base": poolCIDR(cfg.Index), "size": 24}},
		// The veth's subnet, so a registry on any port of HostAddr is reached over plain HTTP.
		"insecure-registries": []string{fmt.Sprintf("10.213.%d.0/24", cfg.Index)},
		"cgroup-parent":       n.cgroup,
		"storage-driver":      "overlay2",
	}
	if acct.dockerID >= 0 {
		daemon["group"] = strconv.Itoa(acct.dockerID)
	}
	data, err := json.MarshalIndent(daemon, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.stateDir, "daemon.json"), data, 0o644)
}

func sshdPath() string {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	return "/usr/sbin/sshd"
}

// daemon is a long-running process the lab started, with its output kept for readiness checks
// and failure reports.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	log    *logBuffer
	err    error // set if it could not start
	exited chan struct{}
}

func launch(name string, argv ...string) *daemon {
	d := &daemon{name: name, log: newLogBuffer(), exited: make(chan struct{})}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.err = fmt.Errorf("start %s: %w", name, err)
		close(d.exited)
		return d
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	return d
}

// waitFor returns once the daemon has logged marker, or says why it never will.
func (d *daemon) waitFor(ctx context.Context, marker string, limit time.Duration) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		changed := d.log.changed()
		if d.log.contains(marker) {
			return nil
		}
		select {
		case <-changed:
		case <-d.exited:
			if d.log.contains(marker) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before logging %q:\n%s", d.name, d.cmd.ProcessState, marker, d.log.tail())
		case <-deadline.C:
			return fmt.Errorf("timed out after %s waiting for %s to log %q:\n%s", limit, d.name, marker, d.log.tail())
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to log %q: %w", d.name, marker, ctx.Err())
		}
	}
}

// reap waits for the daemon's process to be collected after teardown killed it.
func (d *daemon) reap(ctx context.Context) {
	select {
	case <-d.exited:
	case <-ctx.Done():
	}
}

// logBuffer keeps the last 256 KiB of a daemon's output and wakes waiters on every write.
type logBuffer struct {
	mu     sync.Mutex
	data   []byte
	notify chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{notify: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.data = append(b.data, p...)
	if over := len(b.data) - 256<<10; over > 0 {
		b.data = b.data[over:]
	}
	close(b.notify)
	b.notify = make(chan struct{})
	return len(p), nil
}

func (b *logBuffer) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notify
}

func (b *logBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.data, []byte(s))
}

func (b *logBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(b.data)
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return strings.TrimSpace(s)
}
