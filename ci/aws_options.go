package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/deploydrill/deploydrill/ci/target/aws"
	"github.com/deploydrill/deploydrill/infra/awsconfig"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/runtag"
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
}

func (o *awsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.region, "region", "", "aws: region (default: AWS_REGION, else the profile's)")
	fs.StringVar(&o.profile, "profile", "", "aws: shared config profile (default: AWS_PROFILE)")
	fs.StringVar(&o.instanceType, "instance-type", envString("DRILL_INSTANCE_TYPE", ec2.DefaultInstanceType), "aws: EC2 instance type (env DRILL_INSTANCE_TYPE)")
	fs.StringVar(&o.ami, "ami", envString("DRILL_AMI", ""), "aws: AMI id (default: the latest Ubuntu 24.04 LTS amd64) (env DRILL_AMI)")
	fs.StringVar(&o.subnet, "subnet", envString("DRILL_SUBNET", ""), "aws: subnet id (default: the default VPC's default subnet) (env DRILL_SUBNET)")
	fs.StringVar(&o.sshCIDR, "ssh-cidr", envString("DRILL_SSH_CIDR", ""), "aws: who may SSH to the host (default: this machine's public IP as a /32) (env DRILL_SSH_CIDR)")
	fs.StringVar(&o.httpCIDR, "http-cidr", envString("DRILL_HTTP_CIDR", "0.0.0.0/0"), "aws: who may reach the app on port 80 (env DRILL_HTTP_CIDR)")
	fs.DurationVar(&o.maxLifetime, "max-lifetime", envDuration("DRILL_MAX_LIFETIME", 30*time.Minute), "aws: dead-man's switch: the host powers off (and terminates) after this long (env DRILL_MAX_LIFETIME)")
	fs.StringVar(&o.remoteUser, "remote-user", envString("DRILL_REMOTE_USER", ec2.DefaultUser), "aws: SSH user on the host, in the docker group (env DRILL_REMOTE_USER)")
	fs.StringVar(&o.repository, "repository", envString("DRILL_REPOSITORY", "deploydrill"), "aws: ECR repository name (env DRILL_REPOSITORY)")
	fs.BoolVar(&o.ephemeralRepo, "ephemeral-repo", envBool("DRILL_EPHEMERAL_REPO", false), "aws: delete the repository at teardown when this run created it (env DRILL_EPHEMERAL_REPO)")
	fs.StringVar(&o.runID, "run-id", envString("DRILL_RUN_ID", ""), "aws: id tagged on every resource of this run, for sweep (default: time + random) (env DRILL_RUN_ID)")
	fs.DurationVar(&o.dockerReadyLimit, "docker-ready-timeout", envDuration("DRILL_DOCKER_READY_TIMEOUT", 10*time.Minute), "aws: how long cloud-init may take to install Docker (env DRILL_DOCKER_READY_TIMEOUT)")
}

// target checks every input, then loads the SDK configuration: bad input fails before
// anything is created.
func (o *awsOptions) target(ctx context.Context, version string, keepVerified int, log *progress) (*aws.Target, error) {
	now := time.Now()
	run := runtag.Run{ID: o.runID, App: "deploydrill-app", GitSHA: version, CreatedAt: now, Lifetime: o.maxLifetime}
	if run.ID == "" {
		run.ID = runtag.NewID(now)
	}
	if err := run.Validate(); err != nil {
		return nil, fmt.Errorf("--run-id/--max-lifetime: %w", err)
	}
	spec := ec2.HostSpec{AMI: o.ami, InstanceType: o.instanceType, SubnetID: o.subnet, User: o.remoteUser}
	var err error
	if o.sshCIDR != "" {
		if spec.SSHCIDR, err = awsconfig.ParseCIDR("ssh-cidr", o.sshCIDR); err != nil {
			return nil, err
		}
	}
	if spec.HTTPCIDR, err = awsconfig.ParseCIDR("http-cidr", o.httpCIDR); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Region: o.region, Profile: o.profile})
	if err != nil {
		return nil, err
	}
	log.Printf("aws", "run %s in %s", run.ID, cfg.Region)
	return aws.New(aws.Config{
		AWS: cfg, Run: run, Host: spec, Repository: o.repository, Ephemeral: o.ephemeralRepo,
		KeepVerified: keepVerified, DockerReady: o.dockerReadyLimit,
		Logf: func(format string, args ...any) { log.Printf("aws", format, args...) },
	}), nil
}
