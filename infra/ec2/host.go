package ec2

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/runtag"
)

// HostSpec is what LaunchHost is asked for. Zero values take the defaults noted.
type HostSpec struct {
	// Run names and tags everything; Run.Lifetime is also the dead-man's switch (--max-lifetime).
	Run          runtag.Run
	AMI          string       // --ami; default the latest Ubuntu 24.04 LTS amd64
	InstanceType string       // --instance-type; default t3.micro
	SubnetID     string       // --subnet-id; default the default VPC's default subnet
	SSHCIDR      netip.Prefix // --ssh-cidr; default the runner's public IP as a /32
	HTTPCIDR     netip.Prefix // --http-cidr; default 0.0.0.0/0
	User         string       // remote user; default ubuntu
	RootGiB      int32        // root volume size; default 8
}

// DefaultInstanceType is free-tier eligible in most regions; t2.micro works too.
const DefaultInstanceType = "t3.micro"

func (s HostSpec) withDefaults() (HostSpec, error) {
	if err := s.Run.Validate(); err != nil {
		return s, fmt.Errorf("launch host: %w", err)
	}
	if s.InstanceType == "" {
		s.InstanceType = DefaultInstanceType
	}
	if !s.HTTPCIDR.IsValid() {
		s.HTTPCIDR = netip.MustParsePrefix("0.0.0.0/0")
	}
	if s.User == "" {
		s.User = DefaultUser
	}
	if s.RootGiB == 0 {
		s.RootGiB = 8
	}
	for name, p := range map[string]netip.Prefix{"ssh": s.SSHCIDR, "http": s.HTTPCIDR} {
		if p.IsValid() && p.Masked() != p {
			return s, fmt.Errorf("launch host: --%s-cidr %s has host bits set; did you mean %s?", name, p, p.Masked())
		}
	}
	return s, nil
}

// Host is a launched (or partly launched) drill host. LaunchHost returns it even when it fails,
// holding what was created so far, so teardown can remove exactly that.
type Host struct {
	RunID           string
	InstanceID      string
	SecurityGroupID string
	KeyName         string
	AMI             string
	InstanceType    string
	PublicIP        netip.Addr
	SSHPort         int
	User            string
	HostKey         ssh.PublicKey // the pinned host key the instance presents
	LaunchedAt      time.Time
	BootDuration    time.Duration // RunInstances until SSH answered

	// Behind pointers so that printing a Host never prints key material or user-data.
	keys *runKeys
	run  *pendingRun
}

// pendingRun remembers RunInstances when its outcome is unknown (the answer was lost), so
// teardown can replay it with the same client token: EC2 then returns the instance the lost
// call created instead of creating another.
type pendingRun struct{ input *ec2.RunInstancesInput }

// SSHAddr is host:port for SSH.
func (h *Host) SSHAddr() string {
	return net.JoinHostPort(h.PublicIP.String(), strconv.Itoa(h.SSHPort))
}

// ClientConfig logs in with the run's key and accepts only the pinned ed25519 host key.
func (h *Host) ClientConfig() *ssh.ClientConfig {
	cfg := &ssh.ClientConfig{
		User:              h.User,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	}
	if h.HostKey != nil {
		cfg.HostKeyCallback = PinnedHostKey(h.HostKey)
	} else {
		cfg.HostKeyCallback = func(string, net.Addr, ssh.PublicKey) error {
			return fmt.Errorf("ssh: no pinned host key for run %s", h.RunID)
		}
	}
	if h.keys != nil {
		cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(h.keys.client)}
	}
	return cfg
}

// String names the host for logs.
func (h *Host) String() string {
	if h.PublicIP.IsValid() {
		return fmt.Sprintf("%s at %s (run %s)", h.InstanceID, h.PublicIP, h.RunID)
	}
	return fmt.Sprintf("%s (run %s)", h.InstanceID, h.RunID)
}

// Signer is the run's client key for SSH login (nil before the key pair was made). It never
// leaves memory: hand it to an SSH client, never to a log or a file.
func (h *Host) Signer() ssh.Signer {
	if h.keys == nil {
		return nil
	}
	return h.keys.client
}
