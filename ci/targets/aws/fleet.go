package aws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/elbv2"
)

// A fleet is Config.Fleet.Hosts hosts behind an internet-facing Application Load Balancer:
// two security groups (the load balancer's, open to Host.HTTPCIDR; the hosts', open on the
// app's port to the load balancer's group only, and on SSH), the hosts spread over the default
// VPC's subnets in two or more zones, one key pair, and the load balancer, its target group
// with the health check on /health, and its listener. The load balancer provisions while the
// hosts boot. Probes and users reach the fleet through the load balancer's DNS name; hosts
// join its target group as they are deployed.

func (f Fleet) validate(c Config) error {
	if f.Hosts <= 1 {
		return nil
	}
	var errs []error
	if f.Hosts > ec2.MaxHosts {
		errs = append(errs, fmt.Errorf("hosts %d: at most %d", f.Hosts, ec2.MaxHosts))
	}
	if f.FaultHosts < 1 || f.FaultHosts > f.Hosts {
		errs = append(errs, fmt.Errorf("fault hosts %d: want 1 to the fleet's %d hosts", f.FaultHosts, f.Hosts))
	}
	if f.DeregistrationDelay < 0 && f.DeregistrationDelay != elbv2.NoDraining {
		errs = append(errs, fmt.Errorf("deregistration delay %s: must not be negative", f.DeregistrationDelay))
	}
	if c.Host.SubnetID != "" {
		errs = append(errs, errors.New("subnet: a fleet spreads over the default VPC's subnets in two or more zones; --subnet is for a single host"))
	}
	if err := c.balancerSpec(ec2.FleetGroups{}, nil).CheckSettings(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (t *Target) isFleet() bool { return t.cfg.Fleet.Hosts > 1 }

func (c Config) balancerSpec(groups ec2.FleetGroups, subnets []ec2.Subnet) elbv2.FleetSpec {
	return elbv2.FleetSpec{Run: c.Run, SubnetIDs: ec2.SubnetIDs(subnets), SecurityGroupIDs: []string{groups.LoadBalancer},
		Port: int32(c.HTTPPort), Health: c.Fleet.Health, DeregistrationDelay: c.Fleet.DeregistrationDelay}
}

// provisionFleet creates the groups and picks the subnets, then boots the hosts (the first,
// whose key pair the others share, then the rest at once) while the load balancer provisions,
// and connects to every host. Every ledger is kept as it fills, for teardown.
func (t *Target) provisionFleet(ctx context.Context, auth ecr.Auth) error {
	groups, err := t.hosts.CreateFleetGroups(ctx, ec2.FleetGroupsSpec{Run: t.cfg.Run, ClientCIDR: t.cfg.Host.HTTPCIDR,
		SSHCIDR: t.cfg.Host.SSHCIDR, Port: int32(t.cfg.HTTPPort)})
	t.mu.Lock()
	t.groups = groups
	t.mu.Unlock()
	if err != nil {
		return err
	}
	subnets, err := t.hosts.FleetSubnets(ctx, len(t.nodes))
	if err != nil {
		return err
	}
	// Either half failing stops the other: nothing more is created for a fleet that will not
	// drill (what exists is in the ledgers, and carries the run's tags).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var lbErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		lb, err := t.balancers.CreateFleetBalancer(ctx, t.cfg.balancerSpec(groups, subnets))
		t.mu.Lock()
		t.lb = lb
		t.mu.Unlock()
		if lbErr = err; err != nil {
			cancel()
		}
	}()
	hostsErr := t.bootHosts(ctx, auth, groups, subnets)
	if hostsErr != nil {
		cancel()
	}
	wg.Wait()
	if err := errors.Join(lbErr, hostsErr); err != nil {
		return fmt.Errorf("provision a fleet of %d: %w", len(t.nodes), err)
	}
	return nil
}

func (t *Target) bootHosts(ctx context.Context, auth ecr.Auth, groups ec2.FleetGroups, subnets []ec2.Subnet) error {
	boot := func(ctx context.Context, i int, first *ec2.Host) error {
		spec := t.cfg.Host
		spec.Index, spec.SecurityGroupID, spec.SubnetID = i, groups.Hosts, subnets[i%len(subnets)].ID
		spec.SSHCIDR, spec.HTTPCIDR, spec.KeyFrom = netip.Prefix{}, netip.Prefix{}, first
		n := t.nodes[i]
		host, err := t.hosts.LaunchHost(ctx, spec)
		n.mu.Lock()
		n.host = host
		n.mu.Unlock()
		if err != nil {
			return fmt.Errorf("host %d of %d: %w", i+1, len(t.nodes), err)
		}
		return n.connect(ctx, auth)
	}
	if err := boot(ctx, 0, nil); err != nil {
		return err
	}
	first := t.nodes[0].host
	errs := make([]error, len(t.nodes))
	var wg sync.WaitGroup
	for i := 1; i < len(t.nodes); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = boot(ctx, i, first)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (t *Target) balancer() (*elbv2.Balancer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lb == nil || t.lb.ListenerARN == "" {
		return nil, errors.New("the fleet's load balancer is not up")
	}
	return t.lb, nil
}

func (t *Target) balancerEndpoint() string {
	lb, err := t.balancer()
	if err != nil || lb.DNSName == "" {
		return ""
	}
	if lb.ListenerPort == 80 {
		return "http://" + lb.DNSName
	}
	return "http://" + lb.DNSName + ":" + strconv.Itoa(int(lb.ListenerPort))
}

// rollOut deploys img across the fleet, the faulty hosts first, so a rollback starts where
// the damage is. Rolling: one host at a time, its image pulled while it still serves, then
// deregistered and drained (no request in flight is cut), replaced, registered, and healthy
// in the target group before the next; all at once: every host leaves, is replaced, and
// rejoins together (an outage, which is what that rehearses). A host that runs img already is
// left alone.
func (t *Target) rollOut(ctx context.Context, img drill.Image) error {
	lb, err := t.balancer()
	if err != nil {
		return err
	}
	serving, err := t.inRotation(ctx)
	if err != nil {
		return fmt.Errorf("deploy %s to the fleet: %w", img.Tag, err)
	}
	var todo nodes
	for _, n := range t.nodes {
		if !n.runs(img.Ref) || !serving[n.instanceID()] {
			todo = append(todo, n)
		}
	}
	start := time.Now()
	if err := todo.each(ctx, func(ctx context.Context, n *node) error { _, err := n.pull(ctx, img); return err }); err != nil {
		return fmt.Errorf("deploy %s to the fleet: %w", img.Tag, err)
	}
	if t.cfg.Fleet.Rolling {
		for i, n := range todo {
			if err := t.replace(ctx, lb, nodes{n}, img); err != nil {
				return fmt.Errorf("rolling deploy of %s: host %d of %d: %w", img.Tag, i+1, len(todo), err)
			}
			t.log.Info("host rolled", "tag", img.Tag, "host", n.instanceID(), "done", strconv.Itoa(i+1)+"/"+strconv.Itoa(len(todo)))
		}
	} else if err := t.replace(ctx, lb, todo, img); err != nil {
		return fmt.Errorf("deploy %s to %d hosts at once: %w", img.Tag, len(todo), err)
	}
	t.log.Info("fleet deployed", "tag", img.Tag, "hosts", len(todo), "rolling", t.cfg.Fleet.Rolling, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// replace takes hosts out of the target group (draining), deploys img on them, and registers
// them again, returning once they are healthy there.
func (t *Target) replace(ctx context.Context, lb *elbv2.Balancer, ns nodes, img drill.Image) error {
	var registered, ids []string
	for _, n := range ns {
		ids = append(ids, n.instanceID())
		if t.registered(n) {
			registered = append(registered, n.instanceID())
		}
	}
	if err := lb.Deregister(ctx, registered); err != nil {
		return err
	}
	t.setRegistered(ns, false)
	if err := ns.each(ctx, func(ctx context.Context, n *node) error { return n.deploy(ctx, img) }); err != nil {
		return err
	}
	t.setRegistered(ns, true) // from the call on: a failed wait leaves them registered
	return lb.Register(ctx, ids)
}

// inRotation is which hosts the load balancer routes to now, by instance id.
func (t *Target) inRotation(ctx context.Context) (map[string]bool, error) {
	states, err := t.TargetHealth(ctx)
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, s := range states {
		in[s.Host] = s.InRotation()
	}
	return in, nil
}

// Isolate deregisters the faulty hosts that are registered and returns once they drained.
func (t *Target) Isolate(ctx context.Context) error {
	lb, err := t.balancer()
	if err != nil {
		return err
	}
	faulty := t.nodes[:t.cfg.Fleet.FaultHosts]
	var ids []string
	for _, n := range faulty {
		if t.registered(n) {
			ids = append(ids, n.instanceID())
		}
	}
	if err := lb.Deregister(ctx, ids); err != nil {
		return err
	}
	t.setRegistered(faulty, false)
	return nil
}

func (t *Target) registered(n *node) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inLB[n]
}

func (t *Target) setRegistered(ns nodes, in bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range ns {
		t.inLB[n] = in
	}
}

// Fleet describes the fleet for the drill (drill.Fleet).
func (t *Target) Fleet() drill.FleetInfo {
	info := drill.FleetInfo{Rolling: t.cfg.Fleet.Rolling}
	for i, n := range t.nodes {
		id := n.instanceID()
		info.Hosts = append(info.Hosts, id)
		if i < t.cfg.Fleet.FaultHosts {
			info.Faulty = append(info.Faulty, id)
		}
	}
	if lb, err := t.balancer(); err == nil {
		info.Balancer = lb.Name
	}
	return info
}

// Faulty is the hosts the fault hits: the first Fleet.FaultHosts.
func (t *Target) Faulty() drill.Target {
	return hostSet{t: t, nodes: t.nodes[:min(len(t.nodes), max(1, t.cfg.Fleet.FaultHosts))]}
}

// TargetHealth is every registered host's state as the load balancer reports it.
func (t *Target) TargetHealth(ctx context.Context) ([]drill.HostState, error) {
	lb, err := t.balancer()
	if err != nil {
		return nil, err
	}
	states, err := lb.TargetHealth(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]drill.HostState, 0, len(states))
	for _, s := range states {
		out = append(out, drill.HostState{Host: s.InstanceID, State: s.State, Reason: s.Reason})
	}
	return out, nil
}
