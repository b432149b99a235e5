// Package aws is the drill's AWS environment: the image in ECR, a throwaway EC2 host, deploys
// over SSH with the pinned host key (docker login with the password on stdin, pull by digest,
// run on port 80), probes from this machine to the host's public address, and a teardown that
// removes what the run created, applies retention, and says what may be left.
package aws

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/environment"
	"github.com/deploydrill/deploydrill/infra/awsconfig"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/infra/wait"
)

// ContainerName is fixed so stop and replace find the app without remembering an id.
const ContainerName = "deploydrill-app"

// ErrInvalidInput marks a Config that New refuses before any call to AWS: a usage error.
var ErrInvalidInput = errors.New("invalid input")

// Config is what the AWS target needs; the CLI fills it from flags.
type Config struct {
	AWS        sdkaws.Config
	Run        runtag.Run
	Host       ec2.HostSpec // Run is filled in from Config.Run
	Repository string       // ECR repository name
	Ephemeral  bool         // delete the repository at teardown when this run created it
	HTTPPort   int          // the instance port the app is published on (80)
	SSHPort    int          // the port the host's sshd listens on (22)
	// SSHReady bounds the wait for the first SSH login after the instance runs (default 5m).
	SSHReady time.Duration
	// DockerReady bounds the wait for Docker on a fresh host, which cloud-init installs
	// (default 10m). DockerPoll paces it (zero: every 1s, doubling up to 10s).
	DockerReady time.Duration
	DockerPoll  wait.Poll
	// CommandTimeout bounds one remote command; pulls get PullTimeout.
	CommandTimeout, PullTimeout time.Duration
	StopGrace                   time.Duration // docker stop's grace before SIGKILL
	// FaultLifetime bounds how long a fault's process on the host (slow's delayer, crashloop's
	// loop) runs if nothing stops it (default: the run's lifetime, else an hour).
	FaultLifetime time.Duration
	// DelayQueue is the netfilter queue number slow uses on the host (default 2718).
	DelayQueue int
	// Log receives progress with phase "aws" (teardown's with phase "teardown"); nil discards.
	Log *slog.Logger
	// DetectIP overrides the runner's public-IP lookup (nil: the default HTTPS lookup).
	DetectIP ec2.IPDetector
	Timing   ec2.Timing // zero: ec2.DefaultTiming()
}

func (c Config) withDefaults() Config {
	if c.HTTPPort == 0 {
		c.HTTPPort = 80
	}
	if c.SSHPort == 0 {
		c.SSHPort = 22
	}
	if c.SSHReady == 0 {
		c.SSHReady = 5 * time.Minute
	}
	if c.DockerReady == 0 {
		c.DockerReady = 10 * time.Minute
	}
	if c.DockerPoll == (wait.Poll{}) {
		c.DockerPoll = wait.Poll{Initial: time.Second, Max: 10 * time.Second}
	}
	if c.DockerPoll.Timeout == 0 {
		c.DockerPoll.Timeout = c.DockerReady
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
	if c.FaultLifetime == 0 {
		c.FaultLifetime = cmp.Or(c.Run.Lifetime, time.Hour)
	}
	if c.DelayQueue == 0 {
		c.DelayQueue = defaultDelayQueue
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.Host.Run = c.Run
	return c
}

// repositoryName is ECR's rule for repository names (2 to 256 characters).
var repositoryName = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// validate checks every input without a network call; its error wraps ErrInvalidInput.
func (c Config) validate() error {
	var errs []error
	if err := awsconfig.CheckRegion(c.AWS.Region); err != nil {
		errs = append(errs, err)
	}
	if err := c.Host.Validate(); err != nil { // the run too
		errs = append(errs, err)
	}
	if n := len(c.Repository); n < 2 || n > 256 || !repositoryName.MatchString(c.Repository) {
		errs = append(errs, fmt.Errorf("repository %q: not an ECR repository name (2-256 lowercase letters, digits, and . _ - / between them)", c.Repository))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"http port", c.HTTPPort}, {"ssh port", c.SSHPort}} {
		if p.port < 1 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: not a port", p.name, p.port))
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"ssh ready timeout", c.SSHReady}, {"docker ready timeout", c.DockerReady}, {"command timeout", c.CommandTimeout},
		{"pull timeout", c.PullTimeout}, {"stop grace", c.StopGrace}, {"fault lifetime", c.FaultLifetime}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", d.name, d.d))
		}
	}
	if c.DelayQueue < 0 || c.DelayQueue > 65535 {
		errs = append(errs, fmt.Errorf("delay queue %d: not a netfilter queue number (0-65535)", c.DelayQueue))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("aws target: %w: %w", ErrInvalidInput, err)
	}
	return nil
}

// Target is one run's host and registry.
type Target struct {
	cfg   Config
	log   *slog.Logger
	hosts *ec2.Hosts
	repo  *ecr.Repository

	mu       sync.Mutex
	ensured  ecr.Ensured
	auth     ecr.Auth
	host     *ec2.Host // the ledger: what LaunchHost created, even when it failed
	runner   *remote.Runner
	deployed []string     // tags deployed, in order: V, then K
	fault    *drill.Fault // injected and not cleared yet (fault.go)
	torn     bool
}

var (
	_ environment.Environment = (*Target)(nil)
	_ environment.Secret      = ecr.Secret{}
)

// New checks every input (region, run, host spec, repository name) without calling AWS and
// wires the clients; nothing is created until Registry and Provision. Its errors wrap
// ErrInvalidInput.
func New(cfg Config) (*Target, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Log.With("phase", "aws")
	return &Target{
		cfg: cfg,
		log: log,
		hosts: ec2.NewFromConfig(cfg.AWS, ec2.Options{
			AMIs: ssm.NewFromConfig(cfg.AWS), DetectIP: cfg.DetectIP, Timing: cfg.Timing, SSHPort: cfg.SSHPort, Log: log,
		}),
		repo: ecr.NewFromConfig(cfg.AWS, cfg.Repository),
	}, nil
}

func (t *Target) Name() string { return "aws" }

// Registry makes sure the repository exists (created immutable, tagged with the run, when it
// does not) and fetches a registry credential.
func (t *Target) Registry(ctx context.Context) (environment.Destination, error) {
	ensured, err := t.repo.EnsureRepository(ctx, t.cfg.Run, t.cfg.Ephemeral)
	t.mu.Lock()
	t.ensured = ensured // Created even on error: teardown then knows the run made it
	t.mu.Unlock()
	if err != nil {
		return environment.Destination{}, err
	}
	auth, err := t.repo.RegistryAuth(ctx)
	if err != nil {
		return environment.Destination{}, err
	}
	t.mu.Lock()
	t.auth = auth
	t.mu.Unlock()
	t.log.Info("repository ready", "repository", ensured.URI, "created", ensured.Created, "credential_expires", auth.ExpiresAt.Format(time.RFC3339))
	return environment.Destination{Repository: ensured.URI, User: auth.User, Password: auth.Password, Immutable: true}, nil
}

// Inventory is the repository as the drill's inventory.
func (t *Target) Inventory() drill.Inventory { return inventory{t.repo} }

// Provision boots the host, waits once for SSH with the pinned key, then until Docker answers
// the remote user, and logs Docker into the registry (the password on stdin).
func (t *Target) Provision(ctx context.Context) error {
	t.mu.Lock()
	auth := t.auth
	t.mu.Unlock()
	if auth.Password.IsZero() {
		return errors.New("provision: no registry credential for docker login (Registry did not run)")
	}
	host, err := t.hosts.LaunchHost(ctx, t.cfg.Host)
	t.mu.Lock()
	t.host = host // partial on failure: teardown removes what exists
	t.mu.Unlock()
	if err != nil {
		return err
	}
	start := time.Now()
	runner, err := remote.Dial(ctx, remote.Config{
		Addr: host.SSHAddr(), User: host.User, Signer: host.Signer(), HostKey: host.HostKey,
		RetryFor: t.cfg.SSHReady, Logger: t.log,
	})
	if err != nil {
		return fmt.Errorf("provision %s: %w", host, err)
	}
	t.log.Info("ssh ready", "host", host.String(), "after_running", time.Since(start))
	runner, err = t.awaitDocker(ctx, host, runner)
	if err != nil {
		return fmt.Errorf("provision %s: %w", host, err)
	}
	t.mu.Lock()
	t.runner = runner
	t.mu.Unlock()
	if _, err := runner.Run(ctx, remote.Login(auth.Host, auth.User), remote.WithSecretStdin(auth.Password.Reveal()), remote.WithTimeout(t.cfg.CommandTimeout)); err != nil {
		return fmt.Errorf("docker login on the host: %w", err)
	}
	return nil
}

// awaitDocker polls `docker version` until the daemon answers the remote user. A failed attempt
// ends its connection and the next logs in anew with one dial (no retry loop of its own): the
// user joins the docker group while cloud-init runs, and a login made before that never gets
// the group. A host key mismatch or a refused key ends the wait at once.
func (t *Target) awaitDocker(ctx context.Context, host *ec2.Host, first *remote.Runner) (*remote.Runner, error) {
	r, connected := first, true
	err := t.cfg.DockerPoll.Run(ctx, "docker on "+host.String(), func(ctx context.Context) (bool, error) {
		if !connected {
			next, err := r.Reconnect(ctx)
			if err != nil {
				return !remote.Retryable(err), err
			}
			r, connected = next, true
		}
		if _, err := r.Run(ctx, remote.ServerVersion(), remote.WithTimeout(t.cfg.CommandTimeout)); err != nil {
			r.Close()
			connected = false
			return false, err
		}
		return true, nil
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	t.log.Info("docker ready", "host", host.String())
	return r, nil
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
		t.log.Info("image already on the host: no pull", "tag", img.Tag)
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
