package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/steps"
)

// A fleet is N hosts of one run behind a load balancer (infra/elbv2's): the load balancer in
// two or more Availability Zones of the default VPC (FleetSubnets), two security groups
// (CreateFleetGroups: the load balancer's, open to the clients; the hosts', open on the app's
// port only to members of the load balancer's group), and hosts launched with HostSpec.Index,
// .SecurityGroupID and .KeyFrom: each its own instance, all in the hosts group, one key pair.

// Subnet is one subnet a fleet uses.
type Subnet struct {
	ID, VpcID, Zone string
}

// MinZones is how many Availability Zones an Application Load Balancer needs.
const MinZones = 2

// FleetSubnets picks where a fleet of n hosts goes: the default VPC's default subnets, one per
// Availability Zone in zone order, as many as n hosts can use but never fewer than the
// MinZones a load balancer needs (host i goes to subnet i mod len). A default VPC with default
// subnets in fewer than MinZones zones is an error that says which zones it has.
func (h *Hosts) FleetSubnets(ctx context.Context, n int) ([]Subnet, error) {
	vpcID, err := h.defaultVPC(ctx, "a fleet needs the default VPC's subnets in two availability zones")
	if err != nil {
		return nil, fmt.Errorf("fleet subnets: %w", err)
	}
	subs, err := h.defaultSubnets(ctx, vpcID)
	if err != nil {
		return nil, fmt.Errorf("fleet subnets: %w", err)
	}
	if len(subs) < MinZones {
		var zones []string
		for _, s := range subs {
			zones = append(zones, aws.ToString(s.AvailabilityZone)+" ("+aws.ToString(s.SubnetId)+")")
		}
		have := "none"
		if len(zones) > 0 {
			have = strings.Join(zones, ", ")
		}
		return nil, fmt.Errorf("fleet subnets: default vpc %s has default subnets in %d availability zone(s): %s; a load balancer needs %d: "+
			"create a default subnet in another zone (ec2 create-default-subnet --availability-zone ...)", vpcID, len(subs), have, MinZones)
	}
	out := make([]Subnet, 0, len(subs))
	for _, s := range subs[:min(len(subs), max(n, MinZones))] {
		out = append(out, Subnet{ID: aws.ToString(s.SubnetId), VpcID: vpcID, Zone: aws.ToString(s.AvailabilityZone)})
	}
	return out, nil
}

// SubnetIDs are the subnets' ids, for infra/elbv2's FleetSpec.
func SubnetIDs(subnets []Subnet) []string {
	out := make([]string, 0, len(subnets))
	for _, s := range subnets {
		out = append(out, s.ID)
	}
	return out
}

// FleetGroupsSpec is what CreateFleetGroups is asked for. Zero values take the defaults noted.
type FleetGroupsSpec struct {
	// Run names and tags both groups.
	Run runtag.Run
	// VpcID is where the groups go: the fleet's subnets' VPC; default the default VPC.
	VpcID string
	// ClientCIDR is who may reach the load balancer's listener; default 0.0.0.0/0.
	ClientCIDR netip.Prefix
	// SSHCIDR is who may reach the hosts' port 22; default the runner's public IP as a /32.
	SSHCIDR netip.Prefix
	// ListenerPort is the load balancer's port; default 80.
	ListenerPort int32
	// Port is the hosts' port the load balancer sends requests and health checks to; default 80.
	Port int32
}

// FleetGroups are a fleet's security groups: the ledger of what CreateFleetGroups created, a
// group's id set once AWS confirmed it, returned even when it failed part way.
type FleetGroups struct {
	RunID string
	VpcID string
	// LoadBalancer is the load balancer's group (infra/elbv2's FleetSpec.SecurityGroupIDs):
	// ListenerPort from ClientCIDR.
	LoadBalancer string
	// Hosts is the hosts' group (HostSpec.SecurityGroupID): Port from the members of
	// LoadBalancer only, 22 from SSHCIDR.
	Hosts string
}

// Resources lists the groups in deletion order: the hosts' group first, whose rule names the
// load balancer's (AWS refuses to delete a group another group's rule refers to).
func (g FleetGroups) Resources() []Resource {
	var out []Resource
	if g.Hosts != "" {
		out = append(out, Resource{Kind: KindSecurityGroup, ID: g.Hosts, RunID: g.RunID})
	}
	if g.LoadBalancer != "" {
		out = append(out, Resource{Kind: KindSecurityGroup, ID: g.LoadBalancer, RunID: g.RunID})
	}
	return out
}

// LoadBalancerGroupName and HostsGroupName name a run's fleet groups (GroupName allows 255
// characters; a run id has at most 48).
func LoadBalancerGroupName(run runtag.Run) string { return run.ResourceName() + "-lb" }

// HostsGroupName: see LoadBalancerGroupName.
func HostsGroupName(run runtag.Run) string { return run.ResourceName() + "-hosts" }

func (s FleetGroupsSpec) withDefaults() (FleetGroupsSpec, error) {
	var errs []error
	if err := s.Run.Validate(); err != nil {
		errs = append(errs, err)
	}
	if s.VpcID != "" && !strings.HasPrefix(s.VpcID, "vpc-") {
		errs = append(errs, fmt.Errorf("vpc %q: not a vpc id", s.VpcID))
	}
	for _, c := range []struct {
		name string
		p    netip.Prefix
	}{{"client", s.ClientCIDR}, {"ssh", s.SSHCIDR}} {
		if c.p.IsValid() && c.p.Masked() != c.p {
			errs = append(errs, fmt.Errorf("%s cidr %s: host bits set; did you mean %s?", c.name, c.p, c.p.Masked()))
		}
	}
	if s.ListenerPort == 0 {
		s.ListenerPort = 80
	}
	if s.Port == 0 {
		s.Port = 80
	}
	for _, p := range []struct {
		name string
		port int32
	}{{"listener port", s.ListenerPort}, {"port", s.Port}} {
		if p.port < 1 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want 1 to 65535", p.name, p.port))
		}
	}
	if s.Port == 22 {
		errs = append(errs, errors.New("port 22: that is ssh's, open to the runner only"))
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("create fleet groups: %w", invalidSpec{err})
	}
	if !s.ClientCIDR.IsValid() {
		s.ClientCIDR = netip.MustParsePrefix("0.0.0.0/0")
	}
	return s, nil
}

// CreateFleetGroups creates the fleet's two security groups, tagged with the run's tags at
// creation (Name tag: the group's name). Spec errors wrap ErrInvalidSpec and create nothing.
func (h *Hosts) CreateFleetGroups(ctx context.Context, spec FleetGroupsSpec) (FleetGroups, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return FleetGroups{}, err
	}
	c := &fleetGroups{h: h, spec: spec, g: FleetGroups{RunID: spec.Run.ID, VpcID: spec.VpcID}}
	if err := steps.Run(ctx, "create fleet groups",
		steps.Step{Name: "find vpc", Run: c.findVPC},
		steps.Step{Name: "decide ssh source", Run: c.decideSSHSource},
		steps.Step{Name: "create load balancer group", Run: c.createLoadBalancerGroup},
		steps.Step{Name: "create hosts group", Run: c.createHostsGroup},
	); err != nil {
		return c.g, err
	}
	h.log.Info("fleet security groups created", "load balancer", c.g.LoadBalancer, "hosts", c.g.Hosts, "vpc", c.g.VpcID)
	return c.g, nil
}

// fleetGroups carries one CreateFleetGroups through its steps.
type fleetGroups struct {
	h    *Hosts
	spec FleetGroupsSpec
	g    FleetGroups
}

func (c *fleetGroups) findVPC(ctx context.Context) (err error) {
	if c.g.VpcID == "" {
		c.g.VpcID, err = c.h.defaultVPC(ctx, "a fleet needs the default VPC's subnets in two availability zones")
	}
	return err
}

func (c *fleetGroups) decideSSHSource(ctx context.Context) error {
	if c.spec.SSHCIDR.IsValid() {
		return nil
	}
	ip, err := c.h.detectIP(ctx)
	if err != nil {
		return err
	}
	c.spec.SSHCIDR = hostPrefix(ip)
	c.h.log.Info("ssh allowed from the detected public ip", "cidr", c.spec.SSHCIDR.String())
	return nil
}

func (c *fleetGroups) createLoadBalancerGroup(ctx context.Context) error {
	run := c.spec.Run
	id, err := c.h.createGroup(ctx, run, LoadBalancerGroupName(run), c.g.VpcID,
		fmt.Sprintf("deploydrill run %s: the load balancer, http from the clients", run.ID))
	if err != nil {
		return err
	}
	c.g.LoadBalancer = id
	return c.h.authorize(ctx, id, tcpFrom(c.spec.ListenerPort, c.spec.ClientCIDR, "http to the load balancer"))
}

func (c *fleetGroups) createHostsGroup(ctx context.Context) error {
	run := c.spec.Run
	id, err := c.h.createGroup(ctx, run, HostsGroupName(run), c.g.VpcID,
		fmt.Sprintf("deploydrill run %s: the hosts, ssh from the runner, http from the load balancer only", run.ID))
	if err != nil {
		return err
	}
	c.g.Hosts = id
	fromBalancer := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(c.spec.Port), ToPort: aws.Int32(c.spec.Port),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(c.g.LoadBalancer), Description: aws.String("http from the load balancer")}}}
	return c.h.authorize(ctx, id, tcpFrom(22, c.spec.SSHCIDR, "ssh from the runner"), fromBalancer)
}

func (h *Hosts) createGroup(ctx context.Context, run runtag.Run, name, vpcID, description string) (string, error) {
	out, err := h.api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(name),
		Description:       aws.String(description),
		VpcId:             aws.String(vpcID),
		TagSpecifications: tagSpecsNamed(run, name, types.ResourceTypeSecurityGroup),
	})
	if err != nil {
		return "", fmt.Errorf("create security group %s: %w", name, err)
	}
	return aws.ToString(out.GroupId), nil
}

func (h *Hosts) authorize(ctx context.Context, id string, perms ...types.IpPermission) error {
	_, err := h.api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms})
	if err != nil && errorCode(err) != "InvalidPermission.Duplicate" {
		var ports []string
		for _, p := range perms {
			ports = append(ports, fmt.Sprint(aws.ToInt32(p.FromPort)))
		}
		return fmt.Errorf("open ports %s on %s: %w", strings.Join(ports, " and "), id, err)
	}
	return nil
}
