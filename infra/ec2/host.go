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

	// Index is the host's place in its run's fleet: 0 for the first host (a single-host run's
	// only one), which keeps the run's names; host i > 0 is launched as "deploydrill-RUN-i"
	// (HostName), its own client token and Name tag, so each host of a run is its own instance.
	Index int
	// SecurityGroupID is an existing group to launch into (a fleet's hosts group, from
	// CreateFleetGroups) instead of creating one for the host; its rules are that group's, so
	// SSHCIDR and HTTPCIDR must then be zero.
	SecurityGroupID string
	// KeyFrom is a host of the same run whose client key and key pair this one shares (a
	// fleet's first host): nothing is imported, and Signer logs in to both. The host still gets
	// a host key of its own. Nil: the host's keys are made here and its key pair imported.
	KeyFrom *Host
}

// MaxHosts bounds a run's fleet (Index < MaxHosts).
const MaxHosts = 100

// DefaultInstanceType is free-tier eligible in most regions; t2.micro works too.
const DefaultInstanceType = "t3.micro"

// ErrInvalidSpec marks a HostSpec or FleetGroupsSpec refused before any call to AWS.
var ErrInvalidSpec = errors.New("invalid host spec")

var (
	amiPattern          = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	subnetPattern       = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	groupPattern        = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
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
	errs = append(errs, s.validateFleet()...)
	if err := errors.Join(errs...); err != nil {
		return invalidSpec{err}
	}
	return nil
}

// validateFleet checks what places a host in a fleet: its index, the group it joins, the
// host whose keys it shares.
func (s HostSpec) validateFleet() []error {
	var errs []error
	if s.Index < 0 || s.Index >= MaxHosts {
		errs = append(errs, fmt.Errorf("host index %d: want 0 to %d", s.Index, MaxHosts-1))
	}
	if s.SecurityGroupID != "" {
		if !groupPattern.MatchString(s.SecurityGroupID) {
			errs = append(errs, fmt.Errorf("security group %q: not a group id (sg- and 8 or 17 hex digits)", s.SecurityGroupID))
		}
		if s.SSHCIDR.IsValid() || s.HTTPCIDR.IsValid() {
			errs = append(errs, fmt.Errorf("ssh or http cidr given with security group %s: the group's own rules decide who gets in", s.SecurityGroupID))
		}
	}
	if k := s.KeyFrom; k != nil {
		switch {
		case k.RunID != s.Run.ID:
			errs = append(errs, fmt.Errorf("keys of host %s: it belongs to run %s, not %s", k.InstanceID, k.RunID, s.Run.ID))
		case k.keys == nil || k.KeyName == "":
			errs = append(errs, fmt.Errorf("keys of host %d of run %s: its key pair was never imported", k.Index, k.RunID))
		case k.Index == s.Index:
			errs = append(errs, fmt.Errorf("keys of host %d of run %s: a host cannot share its own keys", k.Index, k.RunID))
		}
	}
	return errs
}

// HostName is the name of host index of a run's fleet: the run's ResourceName for the first
// host (index 0), "deploydrill-RUN-i" for host i. It is the instance's client token and Name
// tag, and the key pair's name when the host imports its own.
func HostName(run runtag.Run, index int) string {
	if index == 0 {
		return run.ResourceName()
	}
	return run.ResourceName() + "-" + strconv.Itoa(index)
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
	RunID      string
	Index      int // the host's place in its run's fleet (HostSpec.Index)
	InstanceID string
	// SecurityGroupID is the group the host is in: its own once CreateSecurityGroup succeeded,
	// or the fleet's hosts group it was given (the run created that one too).
	SecurityGroupID string
	// KeyName is set once ImportKeyPair succeeded: the host's own key pair, or the one it
	// shares with HostSpec.KeyFrom (imported by the same run).
	KeyName      string
	KeyPairID    string
	VolumeIDs    []string // the root volume, once the instance runs
	AMI          string
	InstanceType string
	PublicIP     netip.Addr
	SSHPort      int
	User         string
	HostKey      ssh.PublicKey // the pinned host key the instance presents
	LaunchedAt   time.Time
	BootDuration time.Duration // RunInstances until running with a public IP

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
