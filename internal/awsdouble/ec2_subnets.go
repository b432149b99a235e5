package awsdouble

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The default VPC starts with a default subnet in zones a and b (seedWorld). Tests that need
// another shape of account add or remove default subnets, as CreateDefaultSubnet and
// DeleteSubnet do on AWS.

// AddDefaultSubnet adds a default subnet (default-for-AZ, public IPs on launch) to the default
// VPC in zone, a zone name ("eu-west-1c") or the letter after the region ("c"), and returns
// its id. A zone that has one already is refused, as on AWS.
func (d *Double) AddDefaultSubnet(zone string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !strings.HasPrefix(zone, d.opts.Region) {
		zone = d.opts.Region + zone
	}
	var vpcID string
	for _, v := range d.vpcs {
		if v.isDefault {
			vpcID = v.id
		}
	}
	if vpcID == "" {
		return "", fmt.Errorf("add default subnet in %s: no default vpc", zone)
	}
	n := 0
	for _, s := range d.subnets {
		if s.vpcID != vpcID {
			continue
		}
		n++
		if s.defaultForAz && s.az == zone {
			return "", fmt.Errorf("add default subnet in %s: %s is that zone's default subnet already", zone, s.id)
		}
	}
	s := &subnet{id: d.nextID("subnet"), vpcID: vpcID, az: zone, cidr: "172.31." + strconv.Itoa(16*n) + ".0/20", defaultForAz: true, mapPublicIP: true}
	d.subnets = append(d.subnets, s)
	return s.id, nil
}

// DeleteSubnet removes a subnet. Unlike AWS it does not look for network interfaces in it.
func (d *Double) DeleteSubnet(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := slices.IndexFunc(d.subnets, func(s *subnet) bool { return s.id == id })
	if i < 0 {
		return fmt.Errorf("delete subnet %s: no such subnet", id)
	}
	d.subnets = slices.Delete(d.subnets, i, i+1)
	return nil
}
