package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/targets/aws"
	"github.com/deploydrill/deploydrill/infra/awsconfig"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/wait"
)

// awsOptions are the flags of --target aws.
type awsOptions struct {
	region, profile  string
	instanceType     string
	ami, subnet      string
	sshCIDR          string
	httpCIDR         string
	maxLifetime      time.Duration
	remoteUser       string
	repository       string
	ephemeralRepo    bool
	runID            string
	dockerReadyLimit time.Duration
	fleet            fleetOptions
}

// fleetOptions are the flags of a fleet drill: --hosts N behind a load balancer.
type fleetOptions struct {
	hosts, faultHosts   int
	rolling             bool
	healthInterval      time.Duration
	healthTimeout       time.Duration
	healthyThreshold    int
	unhealthyThreshold  int
	deregistrationDelay time.Duration
	poll                time.Duration
}

func (o *fleetOptions) register(f *flags) {
	f.Int(&o.hosts, "hosts", "DRILL_HOSTS", 1, "aws: hosts behind an application load balancer (1: one host, no load balancer; README: Run a fleet drill)")
	f.Int(&o.faultHosts, "fault-hosts", "DRILL_FAULT_HOSTS", 1, "fleet: how many hosts the fault hits (the first ones)")
	f.Bool(&o.rolling, "rolling", "DRILL_ROLLING", true, "fleet: deploy and roll back one host at a time (deregister, drain, deploy, healthy); false: all at once")
	f.Duration(&o.healthInterval, "health-interval", "DRILL_HEALTH_INTERVAL", elbv2.DefaultInterval, "fleet: the target group's health check interval (whole seconds, 5s to 300s)")
	f.Duration(&o.healthTimeout, "health-timeout", "DRILL_HEALTH_TIMEOUT", elbv2.DefaultTimeout, "fleet: the health check's timeout, shorter than the interval")
	f.Int(&o.healthyThreshold, "healthy-threshold", "DRILL_HEALTHY_THRESHOLD", elbv2.DefaultHealthyThreshold, "fleet: passed checks that put a host in rotation (2 to 10)")
	f.Int(&o.unhealthyThreshold, "unhealthy-threshold", "DRILL_UNHEALTHY_THRESHOLD", elbv2.DefaultUnhealthyThreshold, "fleet: failed checks that take a host out of rotation (2 to 10)")
	f.Duration(&o.deregistrationDelay, "deregistration-delay", "DRILL_DEREGISTRATION_DELAY", elbv2.DefaultDeregistrationDelay, "fleet: how long a leaving host drains (0s: none)")
	f.Duration(&o.poll, "lb-poll", "DRILL_LB_POLL", 2*time.Second, "fleet: how often the load balancer's API is asked while waiting for it (active, in service, drained)")
}

// shape is the drill's view of the fleet (zero: one host).
func (o fleetOptions) shape() drill.FleetShape {
	if o.hosts <= 1 {
		return drill.FleetShape{}
	}
	return drill.FleetShape{Hosts: o.hosts, FaultHosts: o.faultHosts}
}

// target is the AWS target's fleet configuration.
func (o fleetOptions) target() aws.Fleet {
	if !o.shape().IsFleet() {
		return aws.Fleet{}
	}
	delay := o.deregistrationDelay
	if delay == 0 {
		delay = elbv2.NoDraining
	}
	timing := elbv2.DefaultTiming() // its bounds, polled every --lb-poll: a rollout waits for no backoff
	for _, p := range []*wait.Poll{&timing.Available, &timing.InService, &timing.Deregistered, &timing.Deleted, &timing.GroupDelete} {
		p.Initial, p.Max = o.poll, o.poll
	}
	return aws.Fleet{Hosts: o.hosts, FaultHosts: o.faultHosts, Rolling: o.rolling, DeregistrationDelay: delay, Timing: timing,
		Health: elbv2.HealthCheck{Interval: o.healthInterval, Timeout: o.healthTimeout,
			HealthyThreshold: int32(o.healthyThreshold), UnhealthyThreshold: int32(o.unhealthyThreshold)}}
}

func (o fleetOptions) validate() error {
	if o.hosts < 1 {
		return usageError("--hosts %d: want at least 1", o.hosts)
	}
	if o.hosts == 1 && o.faultHosts != 1 {
		return usageError("--fault-hosts %d: a single host is all the fault can hit; a fleet needs --hosts N", o.faultHosts)
	}
	if o.deregistrationDelay < 0 {
		return usageError("--deregistration-delay %s: must not be negative (0s: no draining)", o.deregistrationDelay)
	}
	if o.poll <= 0 {
		return usageError("--lb-poll %s: must be positive", o.poll)
	}
	return nil
}

// registerAccount declares the options every AWS command shares: where, and which repository.
func (o *awsOptions) registerAccount(f *flags) {
	f.String(&o.region, "region", "", "", "aws: region (default: AWS_REGION, else the profile's)")
	f.String(&o.profile, "profile", "", "", "aws: shared config profile (default: AWS_PROFILE)")
	f.String(&o.repository, "repository", "DRILL_REPOSITORY", "deploydrill", "aws: ECR repository name")
}

func (o *awsOptions) register(f *flags) {
	o.registerAccount(f)
	f.String(&o.instanceType, "instance-type", "DRILL_INSTANCE_TYPE", ec2.DefaultInstanceType, "aws: EC2 instance type")
	f.String(&o.ami, "ami", "DRILL_AMI", "", "aws: AMI id (default: the latest Ubuntu 24.04 LTS amd64)")
	f.String(&o.subnet, "subnet", "DRILL_SUBNET", "", "aws: subnet id (default: the default VPC's default subnet)")
	f.String(&o.sshCIDR, "ssh-cidr", "DRILL_SSH_CIDR", "", "aws: who may SSH to the host (default: this machine's public IP as a /32)")
	f.String(&o.httpCIDR, "http-cidr", "DRILL_HTTP_CIDR", "0.0.0.0/0", "aws: who may reach the app on port 80")
	f.Duration(&o.maxLifetime, "max-lifetime", "DRILL_MAX_LIFETIME", 30*time.Minute, "aws: dead-man's switch: the host powers off (and terminates) after this long")
	f.String(&o.remoteUser, "remote-user", "DRILL_REMOTE_USER", ec2.DefaultUser, "aws: SSH user on the host, in the docker group")
	f.Bool(&o.ephemeralRepo, "ephemeral-repo", "DRILL_EPHEMERAL_REPO", false, "aws: delete the repository at teardown when this run created it")
	f.String(&o.runID, "run-id", "DRILL_RUN_ID", "", "aws: id tagged on every resource of this run, for sweep (default: time + random)")
	f.Duration(&o.dockerReadyLimit, "docker-ready-timeout", "DRILL_DOCKER_READY_TIMEOUT", 10*time.Minute, "aws: how long cloud-init may take to install Docker")
	o.fleet.register(f)
}

// load checks the region and credentials through the SDK's chain; it creates nothing.
func (o *awsOptions) load(ctx context.Context) (sdkaws.Config, error) {
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Region: o.region, Profile: o.profile})
	if errors.Is(err, awsconfig.ErrInvalidRegion) {
		return cfg, usageError("%v", err)
	}
	return cfg, err
}

// environment checks every input, then loads the SDK configuration: bad input fails before
// anything is created, as a usage error.
func (o *awsOptions) environment(ctx context.Context, version string, log *slog.Logger) (*aws.Target, error) {
	now := time.Now()
	run := runtag.Run{ID: o.runID, App: "deploydrill-app", GitSHA: version, CreatedAt: now, Lifetime: o.maxLifetime}
	if run.ID == "" {
		run.ID = runtag.NewID(now)
		o.runID = run.ID // the history names the run by it too
	}
	spec := ec2.HostSpec{AMI: o.ami, InstanceType: o.instanceType, SubnetID: o.subnet, User: o.remoteUser}
	var errs []error
	if err := run.Validate(); err != nil {
		errs = append(errs, usageError("--run-id/--max-lifetime: %v", err))
	}
	var err error
	if o.sshCIDR != "" {
		if spec.SSHCIDR, err = awsconfig.ParseCIDR("ssh-cidr", o.sshCIDR); err != nil {
			errs = append(errs, usageError("%v", err))
		}
	}
	if spec.HTTPCIDR, err = awsconfig.ParseCIDR("http-cidr", o.httpCIDR); err != nil {
		errs = append(errs, usageError("%v", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg, err := o.load(ctx)
	if err != nil {
		return nil, err
	}
	t, err := aws.New(aws.Config{
		AWS: cfg, Run: run, Host: spec, Repository: o.repository, Ephemeral: o.ephemeralRepo,
		DockerReady: o.dockerReadyLimit, Log: log.With("phase", "aws"), Fleet: o.fleet.target(),
	})
	if errors.Is(err, aws.ErrInvalidInput) {
		return nil, usageError("%v", err)
	}
	if err != nil {
		return nil, err
	}
	log.Info(fmt.Sprintf("run %s in %s", run.ID, cfg.Region), "phase", "aws")
	return t, nil
}
