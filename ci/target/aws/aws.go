// Package aws is the drill's AWS target: the image in ECR, a throwaway EC2 host, deploys over
// SSH with the pinned host key (docker login with the password on stdin, pull by digest, run
// on port 80), probes from this machine to the host's public address, and a teardown that
// leaves nothing behind.
package aws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/infra/teardown"
)

// ContainerName is fixed so stop and replace find the app without remembering an id.
const ContainerName = "deploydrill-app"

// Config is what the AWS target needs; the CLI fills it from flags.
type Config struct {
	AWS          sdkaws.Config
	Run          runtag.Run
	Host         ec2.HostSpec // Run is filled in from Config.Run
	Repository   string       // ECR repository name
	Ephemeral    bool         // delete the repository at teardown when this run created it
	KeepVerified int          // retention: verified images kept besides V and K
	HTTPPort     int          // the instance port the app is published on (80)
	// DockerReady bounds the wait for Docker on a fresh host (cloud-init installs it).
	DockerReady time.Duration
	// CommandTimeout bounds one remote command; pulls get PullTimeout.
	CommandTimeout, PullTimeout time.Duration
	StopGrace                   time.Duration // docker stop's grace before SIGKILL
	Logf                        func(format string, args ...any)
	// DetectIP overrides the runner's public-IP lookup (nil: the default HTTPS lookup).
	DetectIP ec2.IPDetector
	Timing   ec2.Timing // zero: ec2.DefaultTiming()
}

func (c Config) withDefaults() Config {
	if c.HTTPPort == 0 {
		c.HTTPPort = 80
	}
	if c.DockerReady == 0 {
		c.DockerReady = 10 * time.Minute
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = time.Minute
	}
	if c.PullTimeout == 0 {
		c.PullTimeout = 5 * time.Minute
	}
	if c.StopGrace == 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	c.Host.Run = c.Run
	return c
}

// Target is one run's host and registry.
type Target struct {
	cfg   Config
	hosts *ec2.Hosts
	repo  *ecr.Repository

	mu       sync.Mutex
	auth     ecr.Auth
	host     *ec2.Host
	runner   *remote.Runner
	deployed []string // tags deployed, in order: V, then K
	torn     bool
}

var (
	_ drill.Target   = (*Target)(nil)
	_ drill.Preparer = (*Target)(nil)
)

// New wires the AWS clients; nothing is created until EnsureRegistry and LaunchHost.
func New(cfg Config) *Target {
	cfg = cfg.withDefaults()
	return &Target{
		cfg: cfg,
		hosts: ec2.NewFromConfig(cfg.AWS, ec2.Options{
			AMIs: ssm.NewFromConfig(cfg.AWS), DetectIP: cfg.DetectIP, Timing: cfg.Timing, Logf: cfg.Logf,
		}),
		repo: ecr.NewFromConfig(cfg.AWS, cfg.Repository),
	}
}

func (t *Target) Name() string { return "aws" }

// Registry is where the pipeline pushes: the repository URI and its credential.
type Registry struct {
	Repository string // <registry host>/<name>
	User       string
	Password   ecr.Secret
}

// EnsureRegistry makes sure the repository exists and fetches a registry credential.
func (t *Target) EnsureRegistry(ctx context.Context) (Registry, error) {
	ensured, err := t.repo.EnsureRepository(ctx, t.cfg.Run, t.cfg.Ephemeral)
	if err != nil {
		return Registry{}, err
	}
	auth, err := t.repo.RegistryAuth(ctx)
	if err != nil {
		return Registry{}, err
	}
	t.mu.Lock()
	t.auth = auth
	t.mu.Unlock()
	t.cfg.Logf("repository %s ready (created: %v); registry credential valid until %s", ensured.URI, ensured.Created, auth.ExpiresAt.Format(time.RFC3339))
	return Registry{Repository: ensured.URI, User: auth.User, Password: auth.Password}, nil
}

// Inventory is the repository as the drill's inventory.
func (t *Target) Inventory() drill.Inventory { return inventory{t.repo} }

// LaunchHost boots the host, waits until SSH answers with the pinned key and Docker is usable
// by the remote user, and logs Docker into the registry.
func (t *Target) LaunchHost(ctx context.Context) error {
	host, err := t.hosts.LaunchHost(ctx, t.cfg.Host)
	t.mu.Lock()
	t.host = host // partial on failure: teardown removes what exists
	t.mu.Unlock()
	if err != nil {
		return err
	}
	t.cfg.Logf("host %s up; SSH answered %s after launch", host, host.BootDuration.Round(time.Millisecond))
	runner, err := t.awaitDocker(ctx, host)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.runner = runner
	auth := t.auth
	t.mu.Unlock()
	if _, err := runner.Run(ctx, remote.Login(auth.Host, auth.User), remote.WithSecretStdin(auth.Password.Reveal()), remote.WithTimeout(t.cfg.CommandTimeout)); err != nil {
		return fmt.Errorf("docker login on the host: %w", err)
	}
	return nil
}

// awaitDocker polls `docker version` until the daemon answers the remote user. Each attempt
// uses a new SSH connection: the user joins the docker group while cloud-init runs, and a
// connection made before that never gets the group.
func (t *Target) awaitDocker(ctx context.Context, host *ec2.Host) (*remote.Runner, error) {
	var ready *remote.Runner
	poll := ec2.Poll{Initial: time.Second, Max: 10 * time.Second, Timeout: t.cfg.DockerReady}
	err := poll.Run(ctx, "docker on "+host.String(), func(ctx context.Context) (bool, error) {
		runner, err := t.dial(ctx, host)
		if err != nil {
			return true, err // Dial already retried; a host key mismatch is never retried
		}
		if _, err := runner.Run(ctx, remote.ServerVersion(), remote.WithTimeout(t.cfg.CommandTimeout)); err != nil {
			runner.Close()
			return false, err
		}
		ready = runner
		return true, nil
	})
	return ready, err
}

func (t *Target) dial(ctx context.Context, host *ec2.Host) (*remote.Runner, error) {
	return remote.Dial(ctx, remote.Config{
		Addr: host.SSHAddr(), User: host.User, Signer: host.Signer(), HostKey: host.HostKey,
		RetryFor: t.cfg.Timing.SSH.Timeout,
	})
}

// Endpoint is the host's public address on the app's port.
func (t *Target) Endpoint() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.host == nil || !t.host.PublicIP.IsValid() {
		return ""
	}
	return "http://" + netip.AddrPortFrom(t.host.PublicIP, uint16(t.cfg.HTTPPort)).String()
}

func (t *Target) remote() (*remote.Runner, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.runner == nil {
		return nil, errors.New("the host is not up")
	}
	return t.runner, nil
}

// Prepare pre-pulls img, so the rollback needs no network.
func (t *Target) Prepare(ctx context.Context, img drill.Image) error {
	_, err := t.pull(ctx, img)
	return err
}

// pull fetches img unless the host has it already; it reports whether it pulled.
func (t *Target) pull(ctx context.Context, img drill.Image) (bool, error) {
	r, err := t.remote()
	if err != nil {
		return false, err
	}
	ref, err := remote.ParseImageRef(img.Ref)
	if err != nil {
		return false, err
	}
	if _, err := r.Run(ctx, remote.ImagePresent(ref), remote.WithTimeout(t.cfg.CommandTimeout)); err == nil {
		return false, nil
	}
	if _, err := r.Run(ctx, remote.Pull(ref), remote.WithTimeout(t.cfg.PullTimeout)); err != nil {
		return false, fmt.Errorf("pull %s on the host: %w", img.Tag, err)
	}
	return true, nil
}

// Deploy replaces whatever container runs with a new one of img (pulled first if needed).
func (t *Target) Deploy(ctx context.Context, img drill.Image) error {
	pulled, err := t.pull(ctx, img)
	if err != nil {
		return err
	}
	if !pulled {
		t.cfg.Logf("%s already on the host: no pull", img.Tag)
	}
	r, err := t.remote()
	if err != nil {
		return err
	}
	ref, _ := remote.ParseImageRef(img.Ref)
	c := remote.Container{
		Name: ContainerName, Image: ref, HostPort: t.cfg.HTTPPort, ContainerPort: 5000,
		Labels: map[string]string{"deploydrill.run-id": t.cfg.Run.ID, "deploydrill.version": img.Version},
	}
	if _, err := r.Run(ctx, remote.Replace(c), remote.WithTimeout(t.cfg.CommandTimeout)); err != nil {
		return fmt.Errorf("run %s on the host: %w", img.Tag, err)
	}
	t.mu.Lock()
	t.deployed = append(t.deployed, img.Tag)
	t.mu.Unlock()
	return nil
}

// Stop stops the app's container: its process is gone when docker stop returns.
func (t *Target) Stop(ctx context.Context) error {
	r, err := t.remote()
	if err != nil {
		return err
	}
	if _, err := r.Run(ctx, remote.Stop(ContainerName, t.cfg.StopGrace), remote.WithTimeout(t.cfg.StopGrace+t.cfg.CommandTimeout)); err != nil {
		return fmt.Errorf("stop the app on the host: %w", err)
	}
	return nil
}

// Teardown closes SSH and runs the infra teardown: terminate, wait, delete the security group
// and key pair, then ECR retention (keep what this run deployed and the newest verified images)
// or the ephemeral repository. Idempotent: a second call after a clean one does nothing.
func (t *Target) Teardown(ctx context.Context) error {
	t.mu.Lock()
	if t.torn {
		t.mu.Unlock()
		return nil
	}
	runner, host, keep := t.runner, t.host, append([]string(nil), t.deployed...)
	t.runner = nil
	t.mu.Unlock()
	if runner != nil {
		runner.Close()
	}
	plan := teardown.Plan{RunID: t.cfg.Run.ID, Hosts: t.hosts, Host: host, Repository: t.repo, Logf: t.cfg.Logf}
	if len(keep) > 0 {
		plan.Retention = &ecr.Retention{Keep: keep, KeepVerified: t.cfg.KeepVerified}
	}
	err := teardown.Run(ctx, plan.Steps(), logWriter{t.cfg.Logf})
	if err == nil {
		t.mu.Lock()
		t.torn = true
		t.mu.Unlock()
	}
	return err
}

// Leftovers says what may remain when teardown could not finish, and how to remove it.
func (t *Target) Leftovers() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	what := "resources tagged with run " + t.cfg.Run.ID
	if t.host != nil && t.host.InstanceID != "" {
		what = fmt.Sprintf("instance %s, security group %s, key pair %s (run %s)", t.host.InstanceID, t.host.SecurityGroupID, t.host.KeyName, t.cfg.Run.ID)
	}
	return fmt.Sprintf("%s; the host powers itself off after %s; remove everything now with: go run ./ci sweep --run-id %s --region %s --repository %s",
		what, t.cfg.Run.Lifetime, t.cfg.Run.ID, t.cfg.AWS.Region, t.cfg.Repository)
}

type logWriter struct{ logf func(string, ...any) }

func (w logWriter) Write(p []byte) (int, error) {
	w.logf("%s", trimNewline(string(p)))
	return len(p), nil
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
