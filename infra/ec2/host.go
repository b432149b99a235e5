package ec2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/runtag"
)

// HostSpec is what LaunchHost is asked for. Zero values take the defaults noted.
type HostSpec struct {
	// Run names and tags everything; Run.Lifetime is also the dead-man's switch.
	Run          runtag.Run
	AMI          string       // default the latest Ubuntu 24.04 LTS amd64
	InstanceType string       // default t3.micro
	SubnetID     string       // default the default VPC's default subnet
	SSHCIDR      netip.Prefix // who may reach port 22; default the runner's public IP as a /32
	HTTPCIDR     netip.Prefix // who may reach port 80; default 0.0.0.0/0
	User         string       // remote user; default ubuntu
	RootGiB      int32        // root volume size; default 8
}

// DefaultInstanceType is free-tier eligible in most regions; t2.micro works too.
const DefaultInstanceType = "t3.micro"

// ErrInvalidSpec marks a HostSpec refused before any call to AWS.
var ErrInvalidSpec = errors.New("invalid host spec")

var (
	amiPattern          = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	subnetPattern       = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	instanceTypePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
)

// Validate checks the spec's shape without calling AWS: the run, the AMI and subnet ids, the
// instance type, the CIDRs (no host bits), the user name and the lifetime. Its errors wrap
// ErrInvalidSpec. Whether the AMI or subnet exists is LaunchHost's to find out.
func (s HostSpec) Validate() error {
	var errs []error
	if err := s.Run.Validate(); err != nil {
		errs = append(errs, err)
	} else if s.Run.Lifetime < time.Minute {
		errs = append(errs, fmt.Errorf("lifetime %s: shorter than a boot; want at least 1m", s.Run.Lifetime))
	}
	if s.AMI != "" && !amiPattern.MatchString(s.AMI) {
		errs = append(errs, fmt.Errorf("ami %q: not an image id (ami- and 8 or 17 hex digits)", s.AMI))
	}
	if s.SubnetID != "" && !subnetPattern.MatchString(s.SubnetID) {
		errs = append(errs, fmt.Errorf("subnet %q: not a subnet id (subnet- and 8 or 17 hex digits)", s.SubnetID))
	}
	if s.InstanceType != "" && !instanceTypePattern.MatchString(s.InstanceType) {
		errs = append(errs, fmt.Errorf("instance type %q: not an instance type (like t3.micro)", s.InstanceType))
	}
	if s.User != "" && !userPattern.MatchString(s.User) {
		errs = append(errs, fmt.Errorf("remote user %q: not a valid login name", s.User))
	}
	for _, c := range []struct {
		name string
		p    netip.Prefix
	}{{"ssh", s.SSHCIDR}, {"http", s.HTTPCIDR}} {
		if c.p.IsValid() && c.p.Masked() != c.p {
			errs = append(errs, fmt.Errorf("%s cidr %s: host bits set; did you mean %s?", c.name, c.p, c.p.Masked()))
		}
	}
	if s.RootGiB < 0 {
		errs = append(errs, fmt.Errorf("root volume %d GiB: must not be negative", s.RootGiB))
	}
	if err := errors.Join(errs...); err != nil {
		return invalidSpec{err}
	}
	return nil
}

// invalidSpec is what Validate found wrong, matching ErrInvalidSpec.
type invalidSpec struct{ err error }

func (e invalidSpec) Error() string        { return e.err.Error() }
func (e invalidSpec) Unwrap() error        { return e.err }
func (e invalidSpec) Is(target error) bool { return target == ErrInvalidSpec }

func (s HostSpec) withDefaults() (HostSpec, error) {
	if err := s.Validate(); err != nil {
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
	return s, nil
}

// Host is a launched (or partly launched) drill host: the run's ledger of what LaunchHost
// created. LaunchHost returns it even when it fails, holding exactly what was created so far,
// so teardown removes that and nothing else: a field is set only once AWS confirmed the
// resource (KeyName only after ImportKeyPair succeeded, say).
type Host struct {
	RunID           string
	InstanceID      string
	SecurityGroupID string
	KeyName         string // set once ImportKeyPair succeeded
	KeyPairID       string
	VolumeIDs       []string // the root volume, once the instance runs
	AMI             string
	InstanceType    string
	PublicIP        netip.Addr
	SSHPort         int
	User            string
	HostKey         ssh.PublicKey // the pinned host key the instance presents
	LaunchedAt      time.Time
	BootDuration    time.Duration // RunInstances until running with a public IP

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

// String names the host for logs.
func (h *Host) String() string {
	if h.PublicIP.IsValid() {
		return fmt.Sprintf("%s at %s (run %s)", h.InstanceID, h.PublicIP, h.RunID)
	}
	return fmt.Sprintf("%s (run %s)", h.InstanceID, h.RunID)
}

// Signer is the run's client key for SSH login (nil before the keys were made). It never
// leaves memory: hand it to an SSH client, never to a log or a file.
func (h *Host) Signer() ssh.Signer {
	if h.keys == nil {
		return nil
	}
	return h.keys.client
}

// Unresolved reports whether RunInstances may have created an instance whose id the ledger
// does not hold (its answer was lost); RecoverInstance finds out.
func (h *Host) Unresolved() bool { return h != nil && h.InstanceID == "" && h.run != nil }
