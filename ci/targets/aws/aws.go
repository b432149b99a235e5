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
	"github.com/deploydrill/deploydrill/infra/elbv2"
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
	// Fleet, with Hosts > 1, runs the app on that many hosts behind a load balancer.
	Fleet Fleet
}

// Fleet is a fleet's shape and its load balancer's settings (fleet.go).
type Fleet struct {
	Hosts      int  // 0 or 1: a single host, no load balancer
	FaultHosts int  // the first this many hosts are the ones the fault hits; default 1
	Rolling    bool // deploy one host at a time (deregister, drain, deploy, healthy), else all at once
	// Health is the target group's health check; DeregistrationDelay how long a host drains
	// (elbv2.NoDraining for none). Zero values take infra/elbv2's defaults.
	Health              elbv2.HealthCheck
	DeregistrationDelay time.Duration
	Timing              elbv2.Timing // zero: elbv2.DefaultTiming()
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
	if c.Fleet.Hosts > 1 && c.Fleet.FaultHosts == 0 {
		c.Fleet.FaultHosts = 1
	}
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
	if err := c.Fleet.validate(c); err != nil {
		errs = append(errs, err)
	}
	if c.DelayQueue < 0 || c.DelayQueue > 65535 {
		errs = append(errs, fmt.Errorf("delay queue %d: not a netfilter queue number (0-65535)", c.DelayQueue))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("aws target: %w: %w", ErrInvalidInput, err)
	}
	return nil
}

// Target is one run's hosts and registry: one host, or a fleet behind a load balancer
// (Config.Fleet, fleet.go).
type Target struct {
	cfg       Config
	log       *slog.Logger
	hosts     *ec2.Hosts
	repo      *ecr.Repository
	balancers *elbv2.Balancers
	nodes     nodes // one per host, in rollout order: the faulty first

	mu      sync.Mutex
	ensured ecr.Ensured
	auth    ecr.Auth
	groups  ec2.FleetGroups // a fleet's security groups: the ledger of CreateFleetGroups
	lb      *elbv2.Balancer // a fleet's load balancer: the ledger of CreateFleetBalancer
	inLB    map[*node]bool  // hosts registered with the load balancer
	torn    bool
}

var (
	_ environment.Environment = (*Target)(nil)
	_ environment.Secret      = ecr.Secret{}
	_ drill.Fleet             = (*Target)(nil)
)

// New checks every input (region, run, host spec, repository name, fleet) without calling AWS
// and wires the clients; nothing is created until Registry and Provision. Its errors wrap
// ErrInvalidInput.
func New(cfg Config) (*Target, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Log.With("phase", "aws")
	t := &Target{
		cfg: cfg,
		log: log,
		hosts: ec2.NewFromConfig(cfg.AWS, ec2.Options{
			AMIs: ssm.NewFromConfig(cfg.AWS), DetectIP: cfg.DetectIP, Timing: cfg.Timing, SSHPort: cfg.SSHPort, Log: log,
		}),
		repo:      ecr.NewFromConfig(cfg.AWS, cfg.Repository),
		balancers: elbv2.NewFromConfig(cfg.AWS, elbv2.Options{Timing: cfg.Fleet.Timing, Log: log}),
		inLB:      map[*node]bool{},
	}
	for range max(1, cfg.Fleet.Hosts) {
		t.nodes = append(t.nodes, &node{cfg: &t.cfg, log: log})
	}
	return t, nil
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

// Provision boots the host (a fleet: its groups, hosts and load balancer, fleet.go), waits
// once for SSH with the pinned key, then until Docker answers the remote user, and logs Docker
// into the registry (the password on stdin).
func (t *Target) Provision(ctx context.Context) error {
	t.mu.Lock()
	auth := t.auth
	t.mu.Unlock()
	if auth.Password.IsZero() {
		return errors.New("provision: no registry credential for docker login (Registry did not run)")
	}
	if t.isFleet() {
		return t.provisionFleet(ctx, auth)
	}
	n := t.nodes[0]
	host, err := t.hosts.LaunchHost(ctx, t.cfg.Host)
	n.mu.Lock()
	n.host = host // partial on failure: teardown removes what exists
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return n.connect(ctx, auth)
}

// Endpoint is where probes and users go: the host's public address on the app's port, or a
// fleet's load balancer.
func (t *Target) Endpoint() string {
	if t.isFleet() {
		return t.balancerEndpoint()
	}
	n := t.nodes[0]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.host == nil || !n.host.PublicIP.IsValid() {
		return ""
	}
	return "http://" + netip.AddrPortFrom(n.host.PublicIP, uint16(t.cfg.HTTPPort)).String()
}

// Prepare pre-pulls img on every host, so the rollback needs no network.
func (t *Target) Prepare(ctx context.Context, img drill.Image) error {
	return t.nodes.each(ctx, func(ctx context.Context, n *node) error {
		_, err := n.pull(ctx, img)
		return err
	})
}

// Deploy replaces whatever runs with img: on the host, or across a fleet (rolling, fleet.go).
func (t *Target) Deploy(ctx context.Context, img drill.Image) error {
	if t.isFleet() {
		return t.rollOut(ctx, img)
	}
	return t.nodes[0].deploy(ctx, img)
}

// Stop stops the app on every host: its processes are gone when docker stop returns.
func (t *Target) Stop(ctx context.Context) error { return t.all().Stop(ctx) }

func (t *Target) all() hostSet { return hostSet{t: t, nodes: t.nodes} }

// hostSet is some of the run's hosts acting in place and at once: the whole run for Stop and
// Inject, a fleet's faulty hosts for the fault (drill.Fleet's Faulty).
type hostSet struct {
	t     *Target
	nodes nodes
}

func (s hostSet) Name() string     { return s.t.Name() }
func (s hostSet) Endpoint() string { return s.t.Endpoint() }

// Deploy replaces what runs on each host with img, in place: no draining (a bad deploy lands).
func (s hostSet) Deploy(ctx context.Context, img drill.Image) error {
	return s.nodes.each(ctx, func(ctx context.Context, n *node) error { return n.deploy(ctx, img) })
}

func (s hostSet) Stop(ctx context.Context) error {
	return s.nodes.each(ctx, func(ctx context.Context, n *node) error { return n.stop(ctx) })
}
