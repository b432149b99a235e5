package awslab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// Security groups are made real inside each instance: a new TCP or UDP connection arriving on
// eth0 (or on a load balancer's link, elb<k>) passes only when one of the instance's groups
// permits its source, protocol and port, and is dropped silently otherwise (a timeout, as on
// EC2). The check sits in mangle PREROUTING, before docker's DNAT, so a published container port
// is judged by the port the client dialled. The registry listener on the namespace's loopback is
// not behind it.
//
// A rule whose source is a security group (a group pair) admits that group's members: the
// instances launched into it (their addresses) and the load balancers created with it (their
// data planes' source addresses, see balancer.go). A load balancer's own security groups guard
// its data plane's front end the same way.

const sgChain = "AWSLAB-SG"

// instanceInterfaces are where traffic reaches an instance: the host's veth and the load
// balancers' links.
var instanceInterfaces = []string{"eth0", "elb+"}

// syncFirewalls brings every running instance's rules, and every load balancer front end's, in
// line with their groups' ingress. It runs after RunInstances, AuthorizeSecurityGroupIngress
// and the load balancer calls, before their answers are written.
func (l *Lab) syncFirewalls() {
	members := l.groupMembers()
	groups := map[string][]awsdouble.Permission{}
	for _, g := range l.Double.SecurityGroups() {
		for _, p := range g.Ingress {
			for _, src := range p.Groups {
				p.CIDRs = append(slices.Clone(p.CIDRs), members[src]...)
			}
			groups[g.ID] = append(groups[g.ID], p)
		}
	}
	byID := map[string][]awsdouble.Permission{}
	for _, x := range l.Double.Instances() {
		for _, g := range x.SecurityGroups {
			byID[x.ID] = append(byID[x.ID], groups[g]...)
		}
	}
	for _, in := range l.Instances() {
		if err := in.applySecurityGroups(l.ctx, byID[in.ID]); err != nil {
			// A lab that cannot enforce security groups would let a wrong one pass unseen.
			l.errorf("instance %s: security groups: %v", in.ID, err)
		}
	}
	for _, lb := range l.Double.LoadBalancers() {
		b := l.BalancerAt(lb.DNSName)
		if b == nil || lb.Deleted {
			continue
		}
		var perms []awsdouble.Permission
		for _, g := range lb.SecurityGroups {
			perms = append(perms, groups[g]...)
		}
		if err := b.fw.apply(l.ctx, perms); err != nil && !b.Closed() {
			l.errorf("load balancer %s: security groups: %v", lb.Name, err)
		}
	}
}

// groupMembers maps each security group to the source addresses of its members: running
// instances' addresses, live load balancers' data planes.
func (l *Lab) groupMembers() map[string][]string {
	members := map[string][]string{}
	for _, x := range l.Double.Instances() {
		if x.State != "pending" && x.State != "running" {
			continue
		}
		if a, err := netip.ParseAddr(x.PublicIP); err == nil {
			for _, g := range x.SecurityGroups {
				members[g] = append(members[g], netip.PrefixFrom(a, 32).String())
			}
		}
	}
	for _, lb := range l.Double.LoadBalancers() {
		b := l.BalancerAt(lb.DNSName)
		if b == nil || lb.Deleted || b.Closed() {
			continue
		}
		for _, g := range lb.SecurityGroups {
			members[g] = append(members[g], b.Lab.SourcePrefix().String())
		}
	}
	return members
}

// applySecurityGroups replaces the instance's rules when they changed.
func (in *Instance) applySecurityGroups(ctx context.Context, perms []awsdouble.Permission) error {
	rules := sgRules(perms)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed || rules == in.sgRules {
		return nil
	}
	if err := applyRules(ctx, in.netns, rules, instanceInterfaces); err != nil {
		return err
	}
	in.sgRules = rules
	return nil
}

// firewall is the security groups of something other than an instance: a load balancer's.
type firewall struct {
	netns  string
	ifaces []string

	mu    sync.Mutex
	rules string
}

func (f *firewall) apply(ctx context.Context, perms []awsdouble.Permission) error {
	rules := sgRules(perms)
	f.mu.Lock()
	defer f.mu.Unlock()
	if rules == f.rules {
		return nil
	}
	if err := applyRules(ctx, f.netns, rules, f.ifaces); err != nil {
		return err
	}
	f.rules = rules
	return nil
}

// applyRules loads the chain and sends what arrives on each interface through it.
func applyRules(ctx context.Context, netns, rules string, ifaces []string) error {
	restore := exec.CommandContext(ctx, "nsenter", "--net="+netns, "--", "iptables-restore", "-w", "5", "--noflush")
	restore.Stdin = strings.NewReader(rules)
	if out, err := restore.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, strings.TrimSpace(string(out)))
	}
	for _, iface := range ifaces {
		jump := func(op string) []string {
			return []string{"-t", "mangle", op, "PREROUTING", "-i", iface, "-j", sgChain}
		}
		if _, err := iptables(ctx, netns, jump("-C")...); err != nil {
			if _, err := iptables(ctx, netns, jump("-A")...); err != nil {
				return err
			}
		}
	}
	return nil
}

// sgRules renders permissions as an iptables-restore document for the mangle table; declaring
// the chain flushes it, so the document replaces the previous rules at once.
func sgRules(perms []awsdouble.Permission) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*mangle\n:%s - [0:0]\n", sgChain)
	for _, p := range perms {
		for _, cidr := range p.CIDRs {
			if prefix, err := netip.ParsePrefix(cidr); err != nil || !prefix.Addr().Is4() {
				continue // the lab has no IPv6
			}
			switch proto := strings.ToLower(p.Protocol); {
			case proto == "-1" || proto == "all":
				fmt.Fprintf(&b, "-A %s -s %s -j RETURN\n", sgChain, cidr)
			case slices.Contains([]string{"tcp", "udp", "6", "17"}, proto):
				name := map[string]string{"6": "tcp", "17": "udp"}[proto]
				if name == "" {
					name = proto
				}
				fmt.Fprintf(&b, "-A %s -s %s -p %s --dport %d:%d -j RETURN\n", sgChain, cidr, name, p.FromPort, p.ToPort)
			default:
				fmt.Fprintf(&b, "-A %s -s %s -p %s -j RETURN\n", sgChain, cidr, proto)
			}
		}
	}
	fmt.Fprintf(&b, "-A %s -p tcp -m conntrack --ctstate NEW -j DROP\n", sgChain)
	fmt.Fprintf(&b, "-A %s -p udp -m conntrack --ctstate NEW -j DROP\n", sgChain)
	b.WriteString("COMMIT\n")
	return b.String()
}
