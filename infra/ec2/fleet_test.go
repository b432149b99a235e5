package ec2_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/iam"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

func fleetSpec(run runtag.Run) ec2.FleetGroupsSpec {
	return ec2.FleetGroupsSpec{Run: run, ClientCIDR: netip.MustParsePrefix("198.51.100.0/24")}
}

func TestCreateFleetGroupsAdmitsTheAppOnlyFromTheLoadBalancer(t *testing.T) {
	e := newEnv(t, awsdouble.Options{})
	run := testRun("r1")
	groups, err := e.hosts.CreateFleetGroups(t.Context(), fleetSpec(run))
	if err != nil {
		t.Fatal(err)
	}
	lb, hosts := groupByID(t, e.d, groups.LoadBalancer), groupByID(t, e.d, groups.Hosts)
	checks := []struct {
		what      string
		got, want string
	}{
		{"load balancer group name", lb.Name, "deploydrill-r1-lb"},
		{"hosts group name", hosts.Name, "deploydrill-r1-hosts"},
		{"vpc", groups.VpcID + " " + lb.VpcID + " " + hosts.VpcID, "vpc-0000000000000def0 vpc-0000000000000def0 vpc-0000000000000def0"},
		{"load balancer group Name tag", lb.Tags[runtag.KeyName], "deploydrill-r1-lb"},
		{"hosts group Name tag", hosts.Tags[runtag.KeyName], "deploydrill-r1-hosts"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	for _, g := range []awsdouble.SecurityGroup{lb, hosts} {
		for _, want := range run.Tags() {
			if want.Key != runtag.KeyName && g.Tags[want.Key] != want.Value {
				t.Errorf("%s: tag %s = %q, want %q", g.Name, want.Key, g.Tags[want.Key], want.Value)
			}
		}
	}
	if want := []awsdouble.Permission{{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"198.51.100.0/24"}}}; !slices.EqualFunc(lb.Ingress, want, samePermission) {
		t.Errorf("load balancer ingress %+v, want %+v", lb.Ingress, want)
	}
	want := []awsdouble.Permission{
		{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"203.0.113.7/32"}}, // the detected runner
		{Protocol: "tcp", FromPort: 80, ToPort: 80, Groups: []string{groups.LoadBalancer}},
	}
	if !slices.EqualFunc(hosts.Ingress, want, samePermission) {
		t.Errorf("hosts ingress %+v, want %+v", hosts.Ingress, want)
	}
	assertAllowed(t, e.d)
}

func samePermission(a, b awsdouble.Permission) bool {
	return a.Protocol == b.Protocol && a.FromPort == b.FromPort && a.ToPort == b.ToPort && slices.Equal(a.CIDRs, b.CIDRs) && slices.Equal(a.Groups, b.Groups)
}

// assertAllowed checks the double served only what infra/iam/policy.json allows.
func assertAllowed(t *testing.T, d *awsdouble.Double) {
	t.Helper()
	if err := iam.Refuses(d.Operations()); err != nil {
		t.Errorf("the double's calls: %v", err)
	}
}

func TestCreateFleetGroupsRefusesBadInputBeforeCreating(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*ec2.FleetGroupsSpec)
		opts    awsdouble.Options
		wantErr string
	}{
		{"a client cidr with host bits", func(s *ec2.FleetGroupsSpec) { s.ClientCIDR = netip.MustParsePrefix("198.51.100.1/24") }, awsdouble.Options{}, "did you mean 198.51.100.0/24"},
		{"a run without an id", func(s *ec2.FleetGroupsSpec) { s.Run.ID = "" }, awsdouble.Options{}, "run id"},
		{"the app on the ssh port", func(s *ec2.FleetGroupsSpec) { s.Port = 22 }, awsdouble.Options{}, "port 22"},
		{"a port out of range", func(s *ec2.FleetGroupsSpec) { s.ListenerPort = 70000 }, awsdouble.Options{}, "listener port 70000"},
		{"no default vpc", func(*ec2.FleetGroupsSpec) {}, awsdouble.Options{NoDefaultVPC: true}, "this region has none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			spec := fleetSpec(testRun("r1"))
			tt.edit(&spec)
			groups, err := e.hosts.CreateFleetGroups(t.Context(), spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if groups.LoadBalancer != "" || groups.Hosts != "" {
				t.Errorf("ledger %+v for a refused spec", groups)
			}
			if left := e.d.Leftovers(runtag.KeyCreatedBy, ""); len(left) != 0 {
				t.Errorf("created %v", left)
			}
		})
	}
}

func TestTheFleetGroupsLedgerHoldsWhatWasCreated(t *testing.T) {
	e := newEnv(t, awsdouble.Options{})
	e.d.Inject(awsdouble.Fault{Op: "ec2:CreateSecurityGroup", Skip: 1, Code: "UnauthorizedOperation", Status: 403})
	groups, err := e.hosts.CreateFleetGroups(t.Context(), fleetSpec(testRun("r1")))
	if err == nil || !strings.Contains(err.Error(), "create hosts group") {
		t.Fatalf("err = %v, want the hosts group's creation to fail", err)
	}
	if groups.LoadBalancer == "" || groups.Hosts != "" {
		t.Fatalf("ledger %+v: want the load balancer's group only", groups)
	}
	if r := groups.Resources(); len(r) != 1 || r[0].ID != groups.LoadBalancer || r[0].RunID != "r1" {
		t.Errorf("resources %+v", r)
	}
}

// TestFindListsAGroupBeforeTheGroupItRefersTo: the load balancer's group is created first (the
// double lists groups by id), yet a sweep must delete the hosts' group first.
func TestFindListsAGroupBeforeTheGroupItRefersTo(t *testing.T) {
	e := newEnv(t, awsdouble.Options{})
	groups, err := e.hosts.CreateFleetGroups(t.Context(), fleetSpec(testRun("r1")))
	if err != nil {
		t.Fatal(err)
	}
	found, err := e.hosts.Find(t.Context(), runtag.Selector{RunID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range found.SecurityGroups {
		ids = append(ids, g.ID)
	}
	if want := []string{groups.Hosts, groups.LoadBalancer}; !slices.Equal(ids, want) {
		t.Fatalf("found groups %v, want %v (the referring one first)", ids, want)
	}
	for _, r := range found.SecurityGroups {
		if err := e.hosts.DeleteSecurityGroup(t.Context(), r.ID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFleetSubnetsSpanTheZones(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*testing.T, *awsdouble.Double)
		hosts   int
		want    []string // zones
		wantErr string
	}{
		{"two zones for three hosts", func(*testing.T, *awsdouble.Double) {}, 3, []string{"eu-west-1a", "eu-west-1b"}, ""},
		{"a single host still gets two zones", func(*testing.T, *awsdouble.Double) {}, 1, []string{"eu-west-1a", "eu-west-1b"}, ""},
		{"three zones for three hosts", addZone("c"), 3, []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}, ""},
		{"two of three zones for two hosts", addZone("c"), 2, []string{"eu-west-1a", "eu-west-1b"}, ""},
		{"one zone names what is missing", func(t *testing.T, d *awsdouble.Double) {
			if err := d.DeleteSubnet("subnet-000000000000def01"); err != nil {
				t.Fatal(err)
			}
		}, 3, nil, "default subnets in 1 availability zone(s): eu-west-1a (subnet-000000000000def00); a load balancer needs 2"},
		{"no default vpc", func(*testing.T, *awsdouble.Double) {}, 3, nil, "two availability zones"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := awsdouble.Options{NoDefaultVPC: tt.name == "no default vpc"}
			e := newEnv(t, opts)
			tt.prepare(t, e.d)
			subnets, err := e.hosts.FleetSubnets(t.Context(), tt.hosts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var zones []string
			for _, s := range subnets {
				zones = append(zones, s.Zone)
				if s.VpcID != "vpc-0000000000000def0" || !strings.HasPrefix(s.ID, "subnet-") {
					t.Errorf("subnet %+v", s)
				}
			}
			if !slices.Equal(zones, tt.want) {
				t.Errorf("zones %v, want %v", zones, tt.want)
			}
		})
	}
}

func addZone(zone string) func(*testing.T, *awsdouble.Double) {
	return func(t *testing.T, d *awsdouble.Double) {
		if _, err := d.AddDefaultSubnet(zone); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAFleetIsOneInstancePerHost launches three hosts of one run the way a fleet does: each its
// own instance (its own client token and Name tag), all in the hosts group, one key pair.
func TestAFleetIsOneInstancePerHost(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, awsdouble.Options{})
	run := testRun("r1")
	groups, err := e.hosts.CreateFleetGroups(ctx, fleetSpec(run))
	if err != nil {
		t.Fatal(err)
	}
	subnets, err := e.hosts.FleetSubnets(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	var fleet []*ec2.Host
	for i := range 3 {
		spec := ec2.HostSpec{Run: run, Index: i, SecurityGroupID: groups.Hosts, SubnetID: subnets[i%len(subnets)].ID}
		if i > 0 {
			spec.KeyFrom = fleet[0]
		}
		host, err := e.hosts.LaunchHost(ctx, spec)
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		fleet = append(fleet, host)
	}
	insts := e.d.Instances()
	if len(insts) != 3 {
		t.Fatalf("%d instances, want 3", len(insts))
	}
	for i, in := range insts {
		host := fleet[i]
		name := ec2.HostName(run, i)
		if host.InstanceID != in.ID || in.ClientToken != name || in.Tags[runtag.KeyName] != name || host.Index != i {
			t.Errorf("host %d: %s token %q Name %q, want %s named %s", i, host.InstanceID, in.ClientToken, in.Tags[runtag.KeyName], in.ID, name)
		}
		if in.Volumes[0].Tags[runtag.KeyName] != name || in.Tags[runtag.KeyRunID] != "r1" {
			t.Errorf("host %d: volume tags %v, instance tags %v", i, in.Volumes[0].Tags, in.Tags)
		}
		if !slices.Equal(in.SecurityGroups, []string{groups.Hosts}) || host.SecurityGroupID != groups.Hosts {
			t.Errorf("host %d: groups %v (ledger %s), want only the hosts group %s", i, in.SecurityGroups, host.SecurityGroupID, groups.Hosts)
		}
		if in.SubnetID != subnets[i%2].ID || in.KeyName != "deploydrill-r1" {
			t.Errorf("host %d: subnet %s key %s", i, in.SubnetID, in.KeyName)
		}
		if host.KeyPairID != fleet[0].KeyPairID || host.Signer() != fleet[0].Signer() {
			t.Errorf("host %d does not share the run's key pair and client key", i)
		}
		if i > 0 && string(host.HostKey.Marshal()) == string(fleet[0].HostKey.Marshal()) {
			t.Errorf("host %d presents host 0's host key: each host needs its own", i)
		}
	}
	if n := len(e.d.KeyPairs()); n != 1 {
		t.Errorf("%d key pairs, want the run's one", n)
	}
	if n := len(e.d.SecurityGroups()); n != 3 { // the default VPC's default, the fleet's two
		t.Errorf("%d security groups, want the fleet's two and the default", n)
	}
	assertAllowed(t, e.d)
}

func TestHostSpecRefusesAFleetHostThatCannotJoin(t *testing.T) {
	run := testRun("r1")
	e := newEnv(t, awsdouble.Options{})
	first, err := e.hosts.LaunchHost(t.Context(), ec2.HostSpec{Run: run})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.hosts.LaunchHost(t.Context(), ec2.HostSpec{Run: testRun("r2")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    ec2.HostSpec
		wantErr string
	}{
		{"a group and cidrs of its own", ec2.HostSpec{Run: run, Index: 1, SecurityGroupID: first.SecurityGroupID, SSHCIDR: netip.MustParsePrefix("10.0.0.0/8")}, "the group's own rules"},
		{"a group id of the wrong shape", ec2.HostSpec{Run: run, Index: 1, SecurityGroupID: "group-1"}, "not a group id"},
		{"keys of another run", ec2.HostSpec{Run: run, Index: 1, KeyFrom: other}, "belongs to run r2"},
		{"keys of a host that never imported them", ec2.HostSpec{Run: run, Index: 1, KeyFrom: &ec2.Host{RunID: "r1"}}, "never imported"},
		{"its own keys", ec2.HostSpec{Run: run, KeyFrom: first}, "its own keys"},
		{"an index past the fleet's bound", ec2.HostSpec{Run: run, Index: ec2.MaxHosts}, "host index 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if err == nil || !errors.Is(err, ec2.ErrInvalidSpec) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want ErrInvalidSpec mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// TestAFleetHostLaunchedAgainIsTheSameInstance: a retried launch of host i (same client token)
// returns host i's instance, and host j's launch never returns it.
func TestAFleetHostLaunchedAgainIsTheSameInstance(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, awsdouble.Options{})
	run := testRun("r1")
	groups, err := e.hosts.CreateFleetGroups(ctx, fleetSpec(run))
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.hosts.LaunchHost(ctx, ec2.HostSpec{Run: run, SecurityGroupID: groups.Hosts})
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.hosts.LaunchHost(ctx, ec2.HostSpec{Run: run, Index: 1, SecurityGroupID: groups.Hosts, KeyFrom: first})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.hosts.LaunchHost(ctx, ec2.HostSpec{Run: run, Index: 1, SecurityGroupID: groups.Hosts, KeyFrom: first})
	if err != nil {
		t.Fatal(err)
	}
	if second.InstanceID == first.InstanceID || again.InstanceID != second.InstanceID || len(e.d.Instances()) != 2 {
		t.Errorf("instances %s, %s, %s (of %d): want host 1's retry to be host 1", first.InstanceID, second.InstanceID, again.InstanceID, len(e.d.Instances()))
	}
}
