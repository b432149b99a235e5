package awsdouble

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// LoadBalancer is a snapshot of one load balancer (deleted ones still showing included) and
// its listeners.
type LoadBalancer struct {
	ARN, Name, DNSName, State, Scheme, VpcID string
	Deleted                                  bool
	Subnets, SecurityGroups                  []string
	Listeners                                []Listener
	Tags                                     map[string]string
}

// Listener is a snapshot of one listener.
type Listener struct {
	ARN, Protocol, TargetGroupARN string
	Port                          int
	Tags                          map[string]string
}

// TargetGroup is a snapshot of one target group: what a real data plane (HAProxy in the lab)
// needs to follow the double. The durations are the double's, scaled by ELBv2Options.Second.
type TargetGroup struct {
	ARN, Name, HealthCheckPath, Matcher    string
	Port                                   int
	HealthCheckPort                        string // "traffic-port" or a port number
	Interval, Timeout, DeregistrationDelay time.Duration
	HealthyThreshold, UnhealthyThreshold   int
	LoadBalancerARN                        string // the load balancer a listener of which forwards to it; "" for none
	Targets                                []Target
	Tags                                   map[string]string
}

// Target is one registered target as DescribeTargetHealth shows it.
type Target struct {
	InstanceID, Address string // Address: the instance's public IP, what the health checks reach
	Port                int
	State, Reason       string
}

// LoadBalancers lists the load balancers by ARN.
func (d *Double) LoadBalancers() []LoadBalancer {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	var out []LoadBalancer
	for _, lb := range sortedValues(d.elb.lbs, lbKey) {
		x := LoadBalancer{ARN: lb.arn, Name: lb.name, DNSName: lb.dns, State: lb.state(), Scheme: lb.scheme, VpcID: lb.vpcID,
			Deleted: lb.deleted(), Subnets: slices.Clone(lb.subnets), SecurityGroups: slices.Clone(lb.groups), Tags: maps.Clone(lb.tags)}
		for _, l := range sortedValues(d.elb.listeners, func(l *listener) string { return l.arn }) {
			if l.lbARN == lb.arn {
				x.Listeners = append(x.Listeners, Listener{l.arn, l.protocol, l.tgARN, l.port, maps.Clone(l.tags)})
			}
		}
		out = append(out, x)
	}
	return out
}

// TargetGroups lists the target groups by ARN, with their targets' health.
func (d *Double) TargetGroups() []TargetGroup {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	second := d.elb.opts.Second
	var out []TargetGroup
	for _, g := range sortedValues(d.elb.groups, func(g *targetGroup) string { return g.arn }) {
		x := TargetGroup{ARN: g.arn, Name: g.name, HealthCheckPath: g.path, Matcher: g.matcher, Port: g.port, HealthCheckPort: g.healthPort,
			Interval: time.Duration(g.interval) * second, Timeout: time.Duration(g.timeout) * second,
			DeregistrationDelay: time.Duration(g.deregistrationDelay()) * second,
			HealthyThreshold:    g.healthy, UnhealthyThreshold: g.unhealthy, Tags: maps.Clone(g.tags)}
		if lb := d.attachedLoadBalancer(g); lb != nil {
			x.LoadBalancerARN = lb.arn
		}
		for _, t := range sortedValues(g.targets, (*target).key) {
			state, reason, _ := d.targetState(g, t)
			tx := Target{InstanceID: t.id, Port: t.port, State: state, Reason: reason}
			if in := d.instances[t.id]; in != nil {
				tx.Address = in.publicIP
			}
			x.Targets = append(x.Targets, tx)
		}
		out = append(out, x)
	}
	return out
}

// ELBv2Leftovers lists the load balancers (not yet gone), listeners and target groups whose
// tag key has this value (any value when value is ""), as Leftovers does for EC2 and ECR.
func (d *Double) ELBv2Leftovers(key, value string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	has := func(tags map[string]string) bool {
		v, ok := tags[key]
		return ok && (value == "" || v == value)
	}
	var out []string
	for _, l := range sortedValues(d.elb.listeners, func(l *listener) string { return l.arn }) {
		if has(l.tags) {
			out = append(out, fmt.Sprintf("listener %s (:%d)", l.arn, l.port))
		}
	}
	for _, lb := range sortedValues(d.elb.lbs, lbKey) {
		if has(lb.tags) {
			out = append(out, fmt.Sprintf("load balancer %s (%s)", lb.name, lb.state()))
		}
	}
	for _, g := range sortedValues(d.elb.groups, func(g *targetGroup) string { return g.arn }) {
		if has(g.tags) {
			out = append(out, fmt.Sprintf("target group %s (%d targets)", g.name, len(g.targets)))
		}
	}
	return out
}
