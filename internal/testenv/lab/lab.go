// Package lab makes a stand-in EC2 instance on this machine for end-to-end tests: a network
// namespace of the test's own, joined to the host by a veth, running Debian's sshd and its own
// Debian dockerd. Traffic stays between the host and that namespace (there is no default route
// inside). Facts and pitfalls it follows: notes/netns-lab.md. It needs root.
//
// Addresses, for lab index i (0..63), all inside 10.213.0.0/16:
//
//	10.213.i.1/24       host end of the veth (registries for the lab listen here)
//	10.213.i.2/24       the "instance" (sshd :22, published container ports)
//	10.213.(64+i).1/24  docker0 inside the namespace
//	10.213.(128+2i).0/23  docker's pool for user-defined networks inside the namespace
//
// The SSH user is created inside the lab only: sshd and dockerd run in a private mount namespace
// where /etc/passwd, /etc/group and /etc/shadow are bind-mounted copies with the user added (a
// normal uid, member of a docker group that owns the lab's docker socket, no sudo), like the
// ubuntu user on the real AMI. With Config.Sudo the user also gets passwordless sudo, as cloud-init
// gives the AMI's default user: /etc/sudoers is a lab copy too (the host's is never written, and
// its sudoers.d is not read), so a user without Sudo has none even where the host grants some.
//
// StartBalancer makes the other kind of lab: a load balancer's data plane, HAProxy in a
// namespace of its own linked to the instances it serves (balancer.go).
package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/crypto/ssh"
)

// MaxIndex is the highest lab index: each lab takes four /24s of 10.213.0.0/16 (veth, docker0,
// a /23 pool).
const MaxIndex = 63

// Config describes one lab instance. Only Name and Index are required.
type Config struct {
	// Name identifies the lab: the netns, veth, cgroup and state dir are named after it, so a lab
	// of the same name left by a killed run is found and removed first. [a-z0-9-], at most 12.
	Name string
	// Index picks the subnets (see the package doc). Labs running at once need different indexes;
	// Start refuses one whose veth subnet a host interface already has. This package's own tests
	// use 1 to 7: other packages should pick 10 and up.
	Index int
	// HostKeyPEM is sshd's host private key (OpenSSH PEM), as user-data hands it to a real
	// instance; empty means generate an ed25519 key (see Instance.HostKey).
	HostKeyPEM []byte
	// AuthorizedKeys is the user's authorized_keys file content.
	AuthorizedKeys []byte
	// User is the SSH account (default "ubuntu"); "root" uses root.
	User string
	// Sudo gives User passwordless sudo ("ALL=(ALL) NOPASSWD:ALL", cloud-init's rule for the
	// AMI's default user). It needs sudo installed on the host (apt-get install -y sudo).
	Sudo bool
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,11}$`)

// Instance is a running lab.
type Instance struct {
	cfg     Config
	names   names
	hostKey ssh.PublicKey
	daemons []*daemon
	Timings Timings
}

// Timings says where Start spent its time.
type Timings struct {
	StaleCleanup, Network, Daemons, Total time.Duration
}

// Start makes the lab and returns once sshd accepts connections and dockerd answers on its
// socket. A failed Start leaves nothing behind.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if !validName.MatchString(cfg.Name) {
		return nil, fmt.Errorf("lab name %q: want [a-z][a-z0-9-]{0,11} (it names a veth, 15 bytes at most)", cfg.Name)
	}
	if cfg.Index < 0 || cfg.Index > MaxIndex {
		return nil, fmt.Errorf("lab %s: index %d out of range 0..%d", cfg.Name, cfg.Index, MaxIndex)
	}
	if cfg.User == "" {
		cfg.User = "ubuntu"
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	inst := &Instance{cfg: cfg, names: namesFor(cfg.Name)}
	if pid, ok := liveOwner(inst.names); ok {
		return nil, fmt.Errorf("lab %s: in use by running process %d (a lab of the same name in another test?)", cfg.Name, pid)
	}
	begin := time.Now()
	if err := teardown(ctx, inst.names); err != nil {
		return nil, fmt.Errorf("lab %s: remove stale lab: %w", cfg.Name, err)
	}
	inst.Timings.StaleCleanup = time.Since(begin)
	if err := inst.start(ctx); err != nil {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("lab %s: %w", cfg.Name, err), inst.Close(cleanupCtx))
	}
	inst.Timings.Total = time.Since(begin)
	cfg.Logf("lab %s up at %s in %s (stale cleanup %s, network %s, daemons %s)", cfg.Name, inst.Addr(),
		inst.Timings.Total.Round(time.Millisecond), inst.Timings.StaleCleanup.Round(time.Millisecond),
		inst.Timings.Network.Round(time.Millisecond), inst.Timings.Daemons.Round(time.Millisecond))
	return inst, nil
}

func (inst *Instance) start(ctx context.Context) error {
	if err := claim(inst.names); err != nil {
		return err
	}
	if err := checkIndexFree(ctx, inst.cfg.Index); err != nil {
		return err
	}
	t := time.Now()
	if err := setupNetwork(ctx, inst.names, inst.cfg.Index); err != nil {
		return err
	}
	inst.Timings.Network = time.Since(t)
	t = time.Now()
	if err := inst.startDaemons(ctx); err != nil {
		return err
	}
	inst.Timings.Daemons = time.Since(t)
	return nil
}

// Close kills every process of the lab (in its namespace or its docker cgroups; zombies count as
// gone), removes the cgroup folders, the host veth, the namespace and the state dir. Idempotent.
func (inst *Instance) Close(ctx context.Context) error {
	err := teardown(ctx, inst.names)
	for _, d := range inst.daemons {
		d.reap(ctx)
	}
	if err != nil {
		return fmt.Errorf("lab %s: close: %w", inst.cfg.Name, err)
	}
	return nil
}

// Name is the lab's name (also its network namespace's).
func (inst *Instance) Name() string { return inst.cfg.Name }

// Addr is the instance's IP address, the stand-in for an EC2 public IP.
func (inst *Instance) Addr() string { return instanceIP(inst.cfg.Index) }

// HostAddr is the host end of the veth: what the instance reaches the host at. The lab's dockerd
// treats a registry on any port of it as insecure (plain HTTP), e.g. StartRegistry(HostAddr()+":5000").
func (inst *Instance) HostAddr() string { return hostIP(inst.cfg.Index) }

// SSHAddr is host:port for an SSH client.
func (inst *Instance) SSHAddr() string { return inst.Addr() + ":22" }

// User is the SSH account.
func (inst *Instance) User() string { return inst.cfg.User }

// HostKey is sshd's public host key, to pin.
func (inst *Instance) HostKey() ssh.PublicKey { return inst.hostKey }

// DockerHost is the lab daemon's socket as a DOCKER_HOST value, for inspecting it from the host.
func (inst *Instance) DockerHost() string { return "unix://" + inst.names.dockerSocket() }

// DockerConfigDir is the user's DOCKER_CONFIG (where docker login stores credentials) in the lab.
func (inst *Instance) DockerConfigDir() string { return inst.names.dockerConfig(inst.cfg.User) }

// Logs returns the end of the daemons' logs, for a failing test to print.
func (inst *Instance) Logs() string {
	var s string
	for _, d := range inst.daemons {
		s += fmt.Sprintf("--- %s\n%s\n", d.name, d.log.tail())
	}
	return s
}

// names are everything on the host a lab of a given name owns.
type names struct {
	netns    string // ip netns name
	vethHost string // host end; the namespace end is eth0
	cgroup   string // docker's cgroup-parent, absolute
	stateDir string
}

func namesFor(name string) names {
	return names{
		netns:    "ddlab-" + name,
		vethHost: name + "-h",
		cgroup:   "/deploydrill-lab-" + name,
		stateDir: filepath.Join(os.TempDir(), "deploydrill-lab-"+name),
	}
}

func (n names) dockerSocket() string { return filepath.Join(n.stateDir, "docker.sock") }
func (n names) dockerConfig(user string) string {
	return filepath.Join(n.stateDir, "home", user, ".docker")
}
