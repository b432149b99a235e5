package awsdouble

import (
	"net/netip"
	"slices"
	"strings"
)

type group struct {
	id, name, desc, vpcID string
	tags                  map[string]string
	ingress               []Permission
	// dependencyLeft counts DeleteSecurityGroup attempts still refused after the last instance
	// using the group terminated: AWS releases network interfaces late.
	dependencyLeft int
}

// Permission is one ingress rule of a security group.
type Permission struct {
	Protocol string
	FromPort int
	ToPort   int
	CIDRs    []string
	Groups   []string // source security groups (UserIdGroupPairs): their members may connect
}

func (d *Double) createSecurityGroup(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name, desc, vpcID := f.get("GroupName"), f.get("GroupDescription"), f.get("VpcId")
	if name == "" || desc == "" {
		return nil, errorf("MissingParameter", "GroupName and GroupDescription are required")
	}
	if vpcID == "" {
		for _, v := range d.vpcs {
			if v.isDefault {
				vpcID = v.id
			}
		}
		if vpcID == "" {
			return nil, errorf("VPCIdNotSpecified", "No default VPC for this user")
		}
	}
	if d.vpc(vpcID) == nil {
		return nil, errorf("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", vpcID)
	}
	for _, g := range d.groups {
		if g.vpcID == vpcID && g.name == name {
			return nil, errorf("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpcID)
		}
	}
	specs, e := f.tagSpecs("security-group")
	if e != nil {
		return nil, e
	}
	g := &group{id: d.nextID("sg"), name: name, desc: desc, vpcID: vpcID, tags: orEmpty(specs["security-group"])}
	d.groups[g.id] = g
	return &struct {
		Envelope
		GroupID string `xml:"groupId"`
		Tags    []xTag `xml:"tagSet>item"`
	}{GroupID: g.id, Tags: xTags(g.tags)}, nil
}

func (d *Double) groupByRef(f form) (*group, *apiError) {
	id, name := f.get("GroupId"), f.get("GroupName")
	for _, g := range d.groups {
		if (id != "" && g.id == id) || (id == "" && name != "" && g.name == name) {
			return g, nil
		}
	}
	ref := id
	if ref == "" {
		ref = name
	}
	return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", ref)
}

func (d *Double) authorizeIngress(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, e := d.groupByRef(f)
	if e != nil {
		return nil, e
	}
	var add []Permission
	for _, p := range f.items("IpPermissions") {
		perm := Permission{Protocol: p.get("IpProtocol"), FromPort: p.int("FromPort", -1), ToPort: p.int("ToPort", -1)}
		for _, r := range p.items("IpRanges") {
			perm.CIDRs = append(perm.CIDRs, r.get("CidrIp"))
		}
		for _, r := range p.items("Ipv6Ranges") {
			perm.CIDRs = append(perm.CIDRs, r.get("CidrIpv6"))
		}
		for _, c := range perm.CIDRs {
			if pfx, err := netip.ParsePrefix(c); err != nil || pfx.Masked() != pfx {
				return nil, errorf("InvalidParameterValue", "CIDR block %s is malformed", c)
			}
		}
		if perm.Groups, e = d.sourceGroups(p, g); e != nil {
			return nil, e
		}
		for _, have := range g.ingress {
			if have.Protocol == perm.Protocol && have.FromPort == perm.FromPort && have.ToPort == perm.ToPort && slices.Equal(have.CIDRs, perm.CIDRs) && slices.Equal(have.Groups, perm.Groups) {
				return nil, errorf("InvalidPermission.Duplicate", "the specified rule \"peer: %v, %s, from port: %d, to port: %d, ALLOW\" already exists", perm.CIDRs, perm.Protocol, perm.FromPort, perm.ToPort)
			}
		}
		add = append(add, perm)
	}
	if len(add) == 0 {
		return nil, errorf("MissingParameter", "IpPermissions is required")
	}
	g.ingress = append(g.ingress, add...)
	return &ReturnAnswer{Return: true}, nil
}

type xPermission struct {
	Protocol string       `xml:"ipProtocol"`
	FromPort int          `xml:"fromPort"`
	ToPort   int          `xml:"toPort"`
	Ranges   []xRange     `xml:"ipRanges>item"`
	Ranges6  []xRange6    `xml:"ipv6Ranges>item"`
	Groups   []xGroupPair `xml:"groups>item"`
}

type xRange struct {
	CIDR string `xml:"cidrIp"`
}

type xRange6 struct {
	CIDR string `xml:"cidrIpv6"`
}

type xGroup struct {
	OwnerID     string        `xml:"ownerId"`
	GroupID     string        `xml:"groupId"`
	GroupName   string        `xml:"groupName"`
	Description string        `xml:"groupDescription"`
	VpcID       string        `xml:"vpcId"`
	Ingress     []xPermission `xml:"ipPermissions>item"`
	Tags        []xTag        `xml:"tagSet>item"`
}

func (d *Double) describeSecurityGroups(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids, names := f.list("GroupId"), f.list("GroupName")
	for _, id := range ids {
		if d.groups[id] == nil {
			return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
	}
	out := &struct {
		Envelope
		Groups []xGroup `xml:"securityGroupInfo>item"`
	}{}
	filters, e := f.filtersFor((&group{}).attrs)
	if e != nil {
		return nil, e
	}
	for _, g := range sortedValues(d.groups, func(g *group) string { return g.id }) {
		ok := match(filters, g.attrs)
		if !ok || (len(ids) > 0 && !slices.Contains(ids, g.id)) || (len(names) > 0 && !slices.Contains(names, g.name)) {
			continue
		}
		x := xGroup{OwnerID: d.opts.AccountID, GroupID: g.id, GroupName: g.name, Description: g.desc, VpcID: g.vpcID, Tags: xTags(g.tags)}
		for _, p := range g.ingress {
			xp := xPermission{Protocol: p.Protocol, FromPort: p.FromPort, ToPort: p.ToPort, Groups: d.xGroupPairs(p.Groups)}
			for _, c := range p.CIDRs {
				if strings.Contains(c, ":") {
					xp.Ranges6 = append(xp.Ranges6, xRange6{c})
				} else {
					xp.Ranges = append(xp.Ranges, xRange{c})
				}
			}
			x.Ingress = append(x.Ingress, xp)
		}
		out.Groups = append(out.Groups, x)
	}
	return out, nil
}

func (g *group) attrs(name string) ([]string, bool) {
	switch name {
	case "group-id":
		return []string{g.id}, true
	case "group-name":
		return []string{g.name}, true
	case "vpc-id":
		return []string{g.vpcID}, true
	}
	return tagAttrs(g.tags, name)
}

func (d *Double) deleteSecurityGroup(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, e := d.groupByRef(f)
	if e != nil {
		return nil, e
	}
	if g.name == "default" {
		return nil, errorf("CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", g.id)
	}
	if e := d.referencedBy(g); e != nil {
		return nil, e
	}
	for _, in := range d.instances {
		if in.state != stateTerminated && slices.Contains(in.groups, g.id) {
			return nil, errorf("DependencyViolation", "resource %s has a dependent object", g.id)
		}
	}
	if g.dependencyLeft > 0 {
		g.dependencyLeft--
		return nil, errorf("DependencyViolation", "resource %s has a dependent object", g.id)
	}
	delete(d.groups, g.id)
	return &struct {
		ReturnAnswer
		GroupID string `xml:"groupId"`
	}{ReturnAnswer{Return: true}, g.id}, nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func sortedValues[V any](m map[string]V, key func(V) string) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b V) int {
		if key(a) < key(b) {
			return -1
		}
		if key(a) > key(b) {
			return 1
		}
		return 0
	})
	return out
}
