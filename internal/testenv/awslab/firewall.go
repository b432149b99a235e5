package awslab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// Security groups are made real inside each instance: a new TCP or UDP connection arriving on
// eth0 passes only when one of the instance's groups permits its source, protocol and port, and
// is dropped silently otherwise (a timeout, as on EC2). The check sits in mangle PREROUTING,
// before docker's DNAT, so a published container port is judged by the port the client dialled.
// The registry listener on the namespace's loopback is not behind it.

const sgChain = "AWSLAB-SG"

// syncFirewalls brings every running instance's rules in line with its groups' ingress. It runs
// after RunInstances and AuthorizeSecurityGroupIngress, before their answers are written.
func (l *Lab) syncFirewalls() {
	groups := map[string][]awsdouble.Permission{}
	for _, g := range l.Double.SecurityGroups() {
		groups[g.ID] = g.Ingress
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
			l.t.Errorf("awslab: instance %s: security groups: %v", in.ID, err)
		}
	}
}

// applySecurityGroups replaces the instance's rules when they changed.
func (in *Instance) applySecurityGroups(ctx context.Context, perms []awsdouble.Permission) error {
	rules := sgRules(perms)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed || rules == in.sgRules {
		return nil
	}
	restore := exec.CommandContext(ctx, "nsenter", "--net="+in.netns, "--", "iptables-restore", "-w", "5", "--noflush")
	restore.Stdin = strings.NewReader(rules)
	if out, err := restore.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s", err, strings.TrimSpace(string(out)))
	}
	jump := func(op string) []string {
		return []string{"-t", "mangle", op, "PREROUTING", "-i", "eth0", "-j", sgChain}
	}
	if _, err := iptables(ctx, in.netns, jump("-C")...); err != nil {
		if _, err := iptables(ctx, in.netns, jump("-A")...); err != nil {
			return err
		}
	}
	in.sgRules = rules
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
