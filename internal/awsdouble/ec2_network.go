package awsdouble

import (
	"slices"
	"strconv"
)

type vpc struct {
	id, cidr  string
	isDefault bool
}

type subnet struct {
	id, vpcID, az, cidr       string
	defaultForAz, mapPublicIP bool
}

func (d *Double) seedWorld() {
	if !d.opts.NoDefaultVPC {
		d.vpcs = append(d.vpcs, &vpc{id: "vpc-0000000000000def0", cidr: "172.31.0.0/16", isDefault: true})
		for i, az := range []string{"a", "b"} {
			d.subnets = append(d.subnets, &subnet{
				id: "subnet-000000000000def0" + strconv.Itoa(i), vpcID: "vpc-0000000000000def0",
				az: d.opts.Region + az, cidr: "172.31." + strconv.Itoa(16*i) + ".0/20",
				defaultForAz: true, mapPublicIP: true,
			})
		}
		d.groups["sg-0000000000000def0"] = &group{id: "sg-0000000000000def0", name: "default", desc: "default VPC security group", vpcID: "vpc-0000000000000def0", tags: map[string]string{}}
	}
	d.vpcs = append(d.vpcs, &vpc{id: "vpc-0000000000000abc0", cidr: "10.0.0.0/16"})
	d.subnets = append(d.subnets, &subnet{id: "subnet-0000000000000abc0", vpcID: "vpc-0000000000000abc0", az: d.opts.Region + "a", cidr: "10.0.1.0/24"})
	d.seedImages()
}

type xVpc struct {
	VpcID     string `xml:"vpcId"`
	CIDR      string `xml:"cidrBlock"`
	State     string `xml:"state"`
	IsDefault bool   `xml:"isDefault"`
	OwnerID   string `xml:"ownerId"`
}

func (d *Double) describeVpcs(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := &struct {
		Envelope
		Vpcs []xVpc `xml:"vpcSet>item"`
	}{}
	ids := f.list("VpcId")
	for _, id := range ids {
		if d.vpc(id) == nil {
			return nil, errorf("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
		}
	}
	filters, e := f.filtersFor((&vpc{}).attrs)
	if e != nil {
		return nil, e
	}
	for _, v := range d.vpcs {
		ok := match(filters, v.attrs)
		if ok && (len(ids) == 0 || slices.Contains(ids, v.id)) {
			out.Vpcs = append(out.Vpcs, xVpc{v.id, v.cidr, "available", v.isDefault, d.opts.AccountID})
		}
	}
	return out, nil
}

func (v *vpc) attrs(name string) ([]string, bool) {
	switch name {
	case "is-default", "isDefault":
		return []string{strconv.FormatBool(v.isDefault)}, true
	case "vpc-id":
		return []string{v.id}, true
	}
	return tagAttrs(nil, name)
}

func (d *Double) vpc(id string) *vpc {
	for _, v := range d.vpcs {
		if v.id == id {
			return v
		}
	}
	return nil
}

func (s *subnet) attrs(name string) ([]string, bool) {
	switch name {
	case "vpc-id":
		return []string{s.vpcID}, true
	case "default-for-az", "defaultForAz":
		return []string{strconv.FormatBool(s.defaultForAz)}, true
	case "availability-zone":
		return []string{s.az}, true
	case "subnet-id":
		return []string{s.id}, true
	case "map-public-ip-on-launch":
		return []string{strconv.FormatBool(s.mapPublicIP)}, true
	}
	return tagAttrs(nil, name)
}

func (d *Double) subnet(id string) *subnet {
	for _, s := range d.subnets {
		if s.id == id {
			return s
		}
	}
	return nil
}

type xSubnet struct {
	SubnetID     string `xml:"subnetId"`
	VpcID        string `xml:"vpcId"`
	AZ           string `xml:"availabilityZone"`
	CIDR         string `xml:"cidrBlock"`
	State        string `xml:"state"`
	DefaultForAz bool   `xml:"defaultForAz"`
	MapPublicIP  bool   `xml:"mapPublicIpOnLaunch"`
}

func (d *Double) describeSubnets(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := &struct {
		Envelope
		Subnets []xSubnet `xml:"subnetSet>item"`
	}{}
	ids := f.list("SubnetId")
	for _, id := range ids {
		if d.subnet(id) == nil {
			return nil, errorf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
	}
	filters, e := f.filtersFor((&subnet{}).attrs)
	if e != nil {
		return nil, e
	}
	for _, s := range d.subnets {
		ok := match(filters, s.attrs)
		if ok && (len(ids) == 0 || slices.Contains(ids, s.id)) {
			out.Subnets = append(out.Subnets, xSubnet{s.id, s.vpcID, s.az, s.cidr, "available", s.defaultForAz, s.mapPublicIP})
		}
	}
	return out, nil
}
