// Package ec2 launches the drill's throwaway host and removes it again: AMI lookup, a per-run
// security group and key pair, an instance with a pinned SSH host key and a dead-man's switch,
// the wait until it runs with a public IP, and the finds and deletes teardown and sweep use.
// It never dials SSH: the Host it returns carries the address, the pinned host key and the
// client key, and infra/remote connects.
package ec2

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/deploydrill/deploydrill/infra/wait"
)

// api is the part of *ec2.Client this package uses.
type api interface {
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, optFns ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, optFns ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DeleteSecurityGroup(ctx context.Context, in *ec2.DeleteSecurityGroupInput, optFns ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	ImportKeyPair(ctx context.Context, in *ec2.ImportKeyPairInput, optFns ...func(*ec2.Options)) (*ec2.ImportKeyPairOutput, error)
	DescribeKeyPairs(ctx context.Context, in *ec2.DescribeKeyPairsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
	DeleteKeyPair(ctx context.Context, in *ec2.DeleteKeyPairInput, optFns ...func(*ec2.Options)) (*ec2.DeleteKeyPairOutput, error)
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	DeleteVolume(ctx context.Context, in *ec2.DeleteVolumeInput, optFns ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error)
}

var _ api = (*ec2.Client)(nil)

// AMISource names the current Ubuntu image; *ssm.Parameters from infra/ssm fits.
type AMISource interface {
	UbuntuAMI(ctx context.Context) (string, error)
}

// Timing bounds every wait. Tests shrink it; DefaultTiming suits AWS.
type Timing struct {
	Running     wait.Poll // the SDK's InstanceRunning waiter: delays and maximum wait
	Terminated  wait.Poll // the SDK's InstanceTerminated waiter
	GroupDelete wait.Poll // DeleteSecurityGroup while AWS still reports DependencyViolation
	Visibility  wait.Poll // a new instance id EC2 does not know yet (eventual consistency)
}

// DefaultTiming fits AWS: boots take 5-20 s, a group stays in use for seconds to minutes
// after its instance terminated.
func DefaultTiming() Timing {
	return Timing{
		Running:     wait.Poll{Initial: 2 * time.Second, Max: 10 * time.Second, Timeout: 5 * time.Minute},
		Terminated:  wait.Poll{Initial: 2 * time.Second, Max: 15 * time.Second, Timeout: 10 * time.Minute},
		GroupDelete: wait.Poll{Initial: 2 * time.Second, Max: 15 * time.Second, Timeout: 5 * time.Minute},
		Visibility:  wait.Poll{Initial: time.Second, Max: 5 * time.Second, Timeout: time.Minute},
	}
}

// Options configure Hosts. Zero values take the defaults noted on each field.
type Options struct {
	AMIs     AMISource  // nil: look the AMI up with DescribeImages only
	DetectIP IPDetector // nil: ask CheckIPURL over HTTPS
	Timing   Timing     // zero: DefaultTiming()
	SSHPort  int        // the port the host's sshd listens on; default 22
	// Log reports progress; nil discards it.
	Log *slog.Logger
	// Rand feeds key generation; nil means crypto/rand.
	Rand io.Reader
}

// Hosts launches and removes the drill's EC2 hosts.
type Hosts struct {
	api      api
	amis     AMISource
	detectIP IPDetector
	timing   Timing
	sshPort  int
	log      *slog.Logger
	rand     io.Reader
}

// New wraps an EC2 client; *ec2.Client fits.
func New(c api, o Options) *Hosts {
	h := &Hosts{api: c, amis: o.AMIs, detectIP: o.DetectIP, timing: o.Timing, sshPort: o.SSHPort, log: o.Log, rand: o.Rand}
	if h.detectIP == nil {
		h.detectIP = DetectPublicIP(http.DefaultClient, CheckIPURL)
	}
	if h.timing == (Timing{}) {
		h.timing = DefaultTiming()
	}
	if h.sshPort == 0 {
		h.sshPort = 22
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.rand == nil {
		h.rand = rand.Reader
	}
	return h
}

// NewFromConfig builds the client from an SDK configuration.
func NewFromConfig(cfg aws.Config, o Options) *Hosts { return New(ec2.NewFromConfig(cfg), o) }
