package ec2_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

func TestLaunchHostBootsALockedDownTaggedInstance(t *testing.T) {
	e := newEnv(t, awsdouble.Options{})
	run := testRun("r1")
	host, err := e.hosts.LaunchHost(t.Context(), ec2.HostSpec{Run: run})
	if err != nil {
		t.Fatal(err)
	}
	insts := e.d.Instances()
	if len(insts) != 1 {
		t.Fatalf("%d instances, want 1", len(insts))
	}
	in := insts[0]
	checks := []struct {
		what      string
		got, want string
	}{
		{"instance id", host.InstanceID, in.ID},
		{"ami from ssm", in.ImageID, awsdouble.UbuntuAMI},
		{"instance type", in.InstanceType, "t3.micro"},
		{"imdsv2", in.HTTPTokens, "required"},
		{"shutdown behaviour", in.ShutdownBehavior, "terminate"},
		{"public ip", host.PublicIP.String(), in.PublicIP},
		{"key pair", in.KeyName, "deploydrill-r1"},
		{"security group", in.SecurityGroups[0], host.SecurityGroupID},
		{"user", host.User, "ubuntu"},
		{"state", in.State, "running"},
		{"ledger: key pair id", host.KeyPairID, e.d.KeyPairs()[0].ID},
		{"ledger: root volume", strings.Join(host.VolumeIDs, " "), in.Volumes[0].ID},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if v := in.Volumes[0]; v.Type != "gp3" || !v.Encrypted || !v.DeleteOnTermination {
		t.Errorf("root volume %+v, want encrypted gp3 deleted on termination", v)
	}

	for _, tags := range []map[string]string{in.Tags, in.Volumes[0].Tags, e.d.KeyPairs()[0].Tags, groupByID(t, e.d, host.SecurityGroupID).Tags} {
		for _, want := range run.Tags() {
			if tags[want.Key] != want.Value {
				t.Errorf("tag %s = %q, want %q (tags %v)", want.Key, tags[want.Key], want.Value, tags)
			}
		}
	}

	rules := groupByID(t, e.d, host.SecurityGroupID).Ingress
	want := []awsdouble.Permission{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"203.0.113.7/32"}}, {Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"0.0.0.0/0"}}}
	if len(rules) != 2 || rules[0].CIDRs[0] != want[0].CIDRs[0] || rules[1].CIDRs[0] != want[1].CIDRs[0] || rules[0].FromPort != 22 || rules[1].FromPort != 80 {
		t.Errorf("ingress %+v, want %+v", rules, want)
	}

	if !bytes.Contains(in.UserData, []byte(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(host.HostKey))))) {
		t.Error("user-data does not carry the pinned host key")
	}
	for _, secret := range []string{host.String(), strings.Join([]string{host.SSHAddr()}, "")} {
		if strings.Contains(secret, "PRIVATE KEY") {
			t.Error("host formatting leaks key material")
		}
	}
}

func groupByID(t *testing.T, d *awsdouble.Double, id string) awsdouble.SecurityGroup {
	t.Helper()
	for _, g := range d.SecurityGroups() {
		if g.ID == id {
			return g
		}
	}
	t.Fatalf("no security group %s", id)
	return awsdouble.SecurityGroup{}
}

func TestLaunchHostPicksTheImage(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*awsdouble.Double)
		ami     string
		want    string
		wantErr string
	}{
		{"ssm's public parameter wins", func(*awsdouble.Double) {}, "", awsdouble.UbuntuAMI, ""},
		{"ssm failing falls back to Canonical's newest amd64 image", func(d *awsdouble.Double) {
			d.Inject(awsdouble.Fault{Op: "ssm:GetParameter", Code: "AccessDeniedException"})
		}, "", awsdouble.UbuntuAMI, ""},
		{"a missing parameter falls back too", func(d *awsdouble.Double) { d.SetParameter(awsdouble.UbuntuAMIParameter, "") }, "", awsdouble.UbuntuAMI, ""},
		{"--ami overrides", func(*awsdouble.Double) {}, awsdouble.OlderUbuntuAMI, awsdouble.OlderUbuntuAMI, ""},
		{"an unknown --ami fails before anything is created", func(*awsdouble.Double) {}, "ami-0000000000000dead", "", "not found in this region"},
		{"an arm64 --ami is refused", func(*awsdouble.Double) {}, "ami-0000000000000a640", "", "architecture arm64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, awsdouble.Options{})
			tt.prepare(e.d)
			host, err := e.hosts.LaunchHost(t.Context(), ec2.HostSpec{Run: testRun("r1"), AMI: tt.ami})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				if left := e.d.Leftovers(runtag.KeyRunID, "r1"); len(left) != 0 {
					t.Errorf("a refused launch created %v", left)
				}
				return
			}
			if err != nil || host.AMI != tt.want {
				t.Fatalf("ami = %q, %v; want %s", host.AMI, err, tt.want)
			}
		})
	}
}

func TestLaunchHostRefusesBadInputBeforeCreating(t *testing.T) {
	tests := []struct {
		name    string
		opts    awsdouble.Options
		spec    func(*ec2.HostSpec)
		detect  ec2.IPDetector
		wantErr string
	}{
		{"a cidr with host bits", awsdouble.Options{}, func(s *ec2.HostSpec) { s.SSHCIDR = netip.MustParsePrefix("10.1.2.3/8") }, nil, "did you mean 10.0.0.0/8"},
		{"an ami id of the wrong shape", awsdouble.Options{}, func(s *ec2.HostSpec) { s.AMI = "ami-12345" }, nil, "not an image id"},
		{"a subnet id of the wrong shape", awsdouble.Options{}, func(s *ec2.HostSpec) { s.SubnetID = "subnet_abc" }, nil, "not a subnet id"},
		{"an instance type of the wrong shape", awsdouble.Options{}, func(s *ec2.HostSpec) { s.InstanceType = "t3micro" }, nil, "not an instance type"},
		{"a login name the host cannot have", awsdouble.Options{}, func(s *ec2.HostSpec) { s.User = "Drill User" }, nil, "not a valid login name"},
		{"a lifetime shorter than a boot", awsdouble.Options{}, func(s *ec2.HostSpec) { s.Run.Lifetime = time.Second }, nil, "shorter than a boot"},
		{"a run without an id", awsdouble.Options{}, func(s *ec2.HostSpec) { s.Run.ID = "" }, nil, "run id"},
		{"no default vpc", awsdouble.Options{NoDefaultVPC: true}, func(*ec2.HostSpec) {}, nil, "--subnet-id"},
		{"an unknown subnet", awsdouble.Options{}, func(s *ec2.HostSpec) { s.SubnetID = "subnet-0000000000000dead" }, nil, "subnet-0000000000000dead"},
		{"an undetectable runner ip", awsdouble.Options{}, func(*ec2.HostSpec) {}, func(context.Context) (netip.Addr, error) {
			return netip.Addr{}, errors.New("offline")
		}, "offline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts, func(o *ec2.Options) {
				if tt.detect != nil {
					o.DetectIP = tt.detect
				}
			})
			spec := ec2.HostSpec{Run: testRun("r1")}
			tt.spec(&spec)
			_, err := e.hosts.LaunchHost(t.Context(), spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if left := e.d.Leftovers(runtag.KeyCreatedBy, ""); len(left) != 0 {
				t.Errorf("created %v", left)
			}
		})
	}
}

func TestLaunchHostUsesAGivenSubnetAndCIDRs(t *testing.T) {
	e := newEnv(t, awsdouble.Options{})
	_, err := e.hosts.LaunchHost(t.Context(), ec2.HostSpec{Run: testRun("r1"), SubnetID: "subnet-0000000000000abc0",
		SSHCIDR: netip.MustParsePrefix("198.51.100.0/24"), HTTPCIDR: netip.MustParsePrefix("2001:db8::/32"), InstanceType: "t2.micro"})
	if err != nil {
		t.Fatal(err)
	}
	in := e.d.Instances()[0]
	rules := groupByID(t, e.d, in.SecurityGroups[0]).Ingress
	if in.SubnetID != "subnet-0000000000000abc0" || in.InstanceType != "t2.micro" || rules[0].CIDRs[0] != "198.51.100.0/24" || rules[1].CIDRs[0] != "2001:db8::/32" {
		t.Errorf("instance %+v rules %+v", in, rules)
	}
}

func TestTheLedgerHoldsOnlyWhatThisRunCreated(t *testing.T) {
	// A reused run id: a key pair of that name exists already (not this tool's: untagged).
	e := newEnv(t, awsdouble.Options{})
	if err := e.d.ImportKeyPair("deploydrill-r1", nil); err != nil {
		t.Fatal(err)
	}
	host, err := e.hosts.LaunchHost(t.Context(), ec2.HostSpec{Run: testRun("r1")})
	if err == nil || !strings.Contains(err.Error(), "InvalidKeyPair.Duplicate") {
		t.Fatalf("err = %v, want the duplicate key pair", err)
	}
	if host.KeyName != "" || host.KeyPairID != "" {
		t.Errorf("ledger key pair %q (%s): the run did not create it", host.KeyName, host.KeyPairID)
	}
	if host.SecurityGroupID == "" {
		t.Error("ledger lost the security group the run did create")
	}
	found, err := e.hosts.Find(t.Context(), runtag.Selector{RunID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found.KeyPairs) != 0 || len(found.SecurityGroups) != 1 {
		t.Errorf("find by the run's tags: %+v, want its group and no key pair", found)
	}
}
