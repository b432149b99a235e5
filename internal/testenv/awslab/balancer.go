package awslab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/lab"
)

// Load balancers are real in the lab: each one the double creates gets a data plane, HAProxy
// in a network namespace of its own (lab.Balancer), whose address is the DNS name the double
// hands out, so the drill's probes and users reach the fleet through it. HAProxy follows the
// double's ELBv2 state (listeners, target groups, targets, health check settings, draining
// for the deregistration delay), and the double's target health is HAProxy's own view, read
// from its stats socket: the double's health checks are switched off (CheckTarget answers
// awsdouble.ErrCheckSkipped) and the lab reports HAProxy's verdicts (SetTargetHealth).
//
// The data plane reaches every lab instance over a veth of its own; the instance's security
// groups judge what arrives there as they judge eth0, the data plane counting as a member of
// the load balancer's security groups (see firewall.go). Its own front end is behind the load
// balancer's security groups as well: clients on the host come from BalancerClientCIDR.

// BalancerClientCIDR holds the addresses clients on the host reach the load balancers from:
// open a load balancer's security group to it (or to 0.0.0.0/0).
const BalancerClientCIDR = "10.214.0.0/16"

// balancerPoll is how often the lab reads HAProxy's stats to report health to the double.
const balancerPoll = 50 * time.Millisecond

// Balancer is one load balancer's data plane.
type Balancer struct {
	Name string // the load balancer's name
	Addr string // its DNS name in the double: where clients connect
	Lab  *lab.Balancer

	index int
	fw    firewall // the load balancer's security groups, on the front veth

	mu     sync.Mutex
	arn    string            // learnt at the first sync after CreateLoadBalancer
	linked map[*Instance]int // the instances linked, by lab index
	closed bool
}

// BalancerServer is one registered target as the load balancer's HAProxy reports it.
type BalancerServer struct {
	TargetGroup string // the target group's name (HAProxy's backend)
	InstanceID  string
	Port        int
	lab.ServerStat
}

// Servers is every target's state from HAProxy's stats socket, by target group and instance.
func (b *Balancer) Servers(ctx context.Context) ([]BalancerServer, error) {
	stats, err := b.Lab.Servers(ctx)
	if err != nil {
		return nil, err
	}
	var out []BalancerServer
	for _, s := range stats {
		id, port, ok := parseServerName(s.Server)
		if !ok {
			continue
		}
		out = append(out, BalancerServer{TargetGroup: s.Backend, InstanceID: id, Port: port, ServerStat: s})
	}
	return out, nil
}

// ARN is the load balancer's ARN ("" until the double has answered CreateLoadBalancer).
func (b *Balancer) ARN() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.arn
}

// Closed reports whether the data plane is gone (its load balancer was deleted, or the lab closed).
func (b *Balancer) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func serverName(instanceID string, port int) string { return instanceID + "_" + strconv.Itoa(port) }

func parseServerName(name string) (string, int, bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return "", 0, false
	}
	port, err := strconv.Atoi(name[i+1:])
	return name[:i], port, err == nil
}

// balancerSet is the lab's data planes. mu guards the list only and is never held while
// calling the double or HAProxy (the double calls LoadBalancerDNS holding its own lock);
// sync serializes the reconciliations, which do call both.
type balancerSet struct {
	mu     sync.Mutex
	all    []*Balancer
	poller bool
	sync   sync.Mutex
}

func (s *balancerSet) list() []*Balancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}

// Balancers lists the load balancers' data planes, those whose load balancer is gone included.
func (l *Lab) Balancers() []*Balancer { return l.balancers.list() }

// BalancerAt is the data plane serving a load balancer's DNS name (nil for none): the newest
// at that address, since a deleted load balancer's address is handed out again.
func (l *Lab) BalancerAt(dnsName string) *Balancer {
	all := l.balancers.list()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Addr == dnsName {
			return all[i]
		}
	}
	return nil
}

// RequireBalancers stops a test that cannot run load balancer data planes here (HAProxy
// missing): it fails in CI and skips elsewhere.
func RequireBalancers(t testing.TB) {
	t.Helper()
	if err := lab.BalancerAvailable(); err != nil {
		testenv.Require(t, "the lab's load balancer data plane", err.Error())
	}
}

func (l *Lab) plugBalancers() {
	l.Double.LoadBalancerDNS = l.startBalancer
	l.Double.AfterTargetChange = func(string) { l.syncBalancers() }
	l.Double.CheckTarget = func(context.Context, awsdouble.TargetCheck) error { return awsdouble.ErrCheckSkipped }
}

// startBalancer is the double's LoadBalancerDNS: it starts the data plane and returns its
// address. It runs under the double's lock, so it must not call the double.
func (l *Lab) startBalancer(name string) string {
	ctx, cancel := context.WithTimeout(l.ctx, time.Minute)
	defer cancel()
	var last error
	for i := l.opts.FirstIndex; i <= lab.MaxBalancerIndex; i++ {
		if !reserveBalancerIndex(i) {
			continue
		}
		data, err := lab.StartBalancer(ctx, lab.BalancerConfig{Name: balancerLabName(i), Index: i, Logf: l.logf})
		if err != nil {
			releaseBalancerIndex(i)
			last = err
			if strings.Contains(err.Error(), "in use") { // another process's: try the next index
				continue
			}
			break
		}
		b := &Balancer{Name: name, Addr: data.Addr(), Lab: data, index: i, linked: map[*Instance]int{},
			fw: firewall{netns: data.NetnsPath(), ifaces: []string{"eth0"}}}
		l.balancers.mu.Lock()
		l.balancers.all = append(l.balancers.all, b)
		startPoller := !l.balancers.poller
		l.balancers.poller = true
		l.balancers.mu.Unlock()
		if startPoller {
			go l.pollBalancers()
		}
		l.logf("load balancer %s: data plane %s (HAProxy) at %s", name, data.Name(), b.Addr)
		return b.Addr
	}
	// A lab whose load balancer serves nothing would fail the test later and obscurely.
	l.errorf("load balancer %s: no data plane: %v", name, last)
	return "127.0.0.1"
}

// syncBalancers brings every data plane in line with the double: it closes those whose load
// balancer was deleted, links the running instances, applies the listeners, target groups and
// targets to HAProxy, and the security groups to the front ends.
func (l *Lab) syncBalancers() {
	l.balancers.sync.Lock()
	defer l.balancers.sync.Unlock()
	if l.isClosed() {
		return
	}
	bs := l.balancers.list()
	if len(bs) == 0 {
		return
	}
	lbs, tgs := l.Double.LoadBalancers(), l.Double.TargetGroups()
	ctx, cancel := context.WithTimeout(l.ctx, time.Minute)
	defer cancel()
	for _, b := range bs {
		if b.Closed() {
			continue
		}
		i := slices.IndexFunc(lbs, func(lb awsdouble.LoadBalancer) bool { return lb.DNSName == b.Addr && lb.Name == b.Name })
		seen := b.ARN() != ""
		if i < 0 && !seen {
			continue // the double has not stored it yet: CreateLoadBalancer is still answering
		}
		var lb awsdouble.LoadBalancer
		if i >= 0 {
			lb = lbs[i]
			b.mu.Lock()
			b.arn = lb.ARN
			b.mu.Unlock()
		}
		if i < 0 || lb.Deleted { // deleted, or gone from the listings already
			start := time.Now()
			if err := l.closeBalancer(ctx, b); err != nil {
				l.errorf("load balancer %s: close data plane: %v", b.Name, err)
				continue
			}
			l.logf("load balancer %s deleted: data plane %s removed in %s", b.Name, b.Lab.Name(), time.Since(start).Round(time.Millisecond))
			continue
		}
		if err := l.linkInstances(ctx, b); err != nil {
			l.errorf("load balancer %s: %v", b.Name, err)
		}
		if err := b.Lab.Apply(ctx, haproxyConfig(lb, tgs)); err != nil && ctx.Err() == nil {
			// A server with connections left is removed at a later sync; anything else is a
			// lab that no longer matches the double.
			if !strings.Contains(err.Error(), "still has connections") {
				l.errorf("load balancer %s: %v", b.Name, err)
			}
		}
	}
}

// haproxyConfig is what the double says the load balancer serves: a frontend per HTTP
// listener, a backend per target group a listener forwards to, a server per registered target
// the load balancer routes to or drains (not the unused ones: stopped instances, a group
// nothing forwards to).
func haproxyConfig(lb awsdouble.LoadBalancer, tgs []awsdouble.TargetGroup) lab.HAProxyConfig {
	var c lab.HAProxyConfig
	for _, ln := range lb.Listeners {
		i := slices.IndexFunc(tgs, func(g awsdouble.TargetGroup) bool { return g.ARN == ln.TargetGroupARN })
		if ln.Protocol != "HTTP" || i < 0 {
			continue
		}
		g := tgs[i]
		c.Frontends = append(c.Frontends, lab.Frontend{Port: ln.Port, Backend: g.Name})
		if slices.ContainsFunc(c.Backends, func(b lab.Backend) bool { return b.Name == g.Name }) {
			continue
		}
		be := lab.Backend{Name: g.Name, Health: lab.HealthCheck{Path: g.HealthCheckPath, Matcher: g.Matcher,
			Interval: g.Interval, Timeout: g.Timeout, Rise: g.HealthyThreshold, Fall: g.UnhealthyThreshold}}
		if g.HealthCheckPort != "traffic-port" {
			be.Health.Port, _ = strconv.Atoi(g.HealthCheckPort)
		}
		for _, t := range g.Targets {
			if t.State == "unused" || t.Address == "" {
				continue
			}
			be.Servers = append(be.Servers, lab.Server{Name: serverName(t.InstanceID, t.Port), Addr: t.Address, Port: t.Port, Draining: t.State == "draining"})
		}
		c.Backends = append(c.Backends, be)
	}
	return c
}

// linkInstances joins the data plane to every running lab instance (as a load balancer
// reaches the whole VPC; the instances' security groups decide what gets in).
func (l *Lab) linkInstances(ctx context.Context, b *Balancer) error {
	var errs []error
	for _, in := range l.Instances() {
		if in.Closed() || in.isTerminating() {
			continue
		}
		b.mu.Lock()
		_, done := b.linked[in]
		b.mu.Unlock()
		if done {
			continue
		}
		if err := b.Lab.Link(ctx, in.netns, in.index, in.Addr); err != nil {
			errs = append(errs, fmt.Errorf("link instance %s: %w", in.ID, err))
			continue
		}
		b.mu.Lock()
		b.linked[in] = in.index
		b.mu.Unlock()
	}
	return errors.Join(errs...)
}

// unlinkInstance removes an instance's links before its lab goes.
func (l *Lab) unlinkInstance(ctx context.Context, in *Instance) {
	for _, b := range l.balancers.list() {
		b.mu.Lock()
		_, linked := b.linked[in]
		delete(b.linked, in)
		b.mu.Unlock()
		if linked {
			if err := b.Lab.Unlink(ctx, in.index); err != nil {
				l.logf("load balancer %s: %v", b.Name, err)
			}
		}
	}
}

func (l *Lab) closeBalancer(ctx context.Context, b *Balancer) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	if err := b.Lab.Close(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	b.closed, b.linked = true, map[*Instance]int{}
	b.mu.Unlock()
	releaseBalancerIndex(b.index)
	return nil
}

// closeBalancers is the lab's cleanup of the data planes still running.
func (l *Lab) closeBalancers(ctx context.Context) error {
	l.balancers.sync.Lock()
	defer l.balancers.sync.Unlock()
	var errs []error
	for _, b := range l.balancers.list() {
		if l.t.Failed() && !b.Closed() {
			l.t.Logf("awslab: load balancer %s (%s) HAProxy log:\n%s", b.Name, b.Lab.Name(), b.Lab.Logs())
		}
		errs = append(errs, l.closeBalancer(ctx, b))
	}
	return errors.Join(errs...)
}

// pollBalancers reads HAProxy's view of every target every balancerPoll and reports it to the
// double, and re-syncs (a server left with connections, a load balancer that became active).
func (l *Lab) pollBalancers() {
	tick := time.NewTicker(balancerPoll)
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick.C:
		}
		l.syncBalancers()
		for _, v := range l.verdicts() {
			l.Double.SetTargetHealth(v)
		}
	}
}

// verdicts are HAProxy's judgements of the targets the double says the load balancers check.
func (l *Lab) verdicts() []awsdouble.TargetVerdict {
	l.balancers.sync.Lock()
	defer l.balancers.sync.Unlock()
	if l.isClosed() {
		return nil
	}
	tgs := l.Double.TargetGroups()
	var out []awsdouble.TargetVerdict
	for _, b := range l.balancers.list() {
		if b.Closed() {
			continue
		}
		servers, err := b.Servers(l.ctx)
		if err != nil {
			if l.ctx.Err() == nil && !b.Closed() {
				l.logf("load balancer %s: %v", b.Name, err)
			}
			continue
		}
		for _, s := range servers {
			i := slices.IndexFunc(tgs, func(g awsdouble.TargetGroup) bool { return g.Name == s.TargetGroup })
			if i < 0 {
				continue
			}
			j := slices.IndexFunc(tgs[i].Targets, func(t awsdouble.Target) bool { return t.InstanceID == s.InstanceID && t.Port == s.Port })
			if j < 0 {
				continue
			}
			if v, ok := verdict(tgs[i].Targets[j].State, s.ServerStat); ok {
				v.TargetGroupARN, v.InstanceID, v.Port = tgs[i].ARN, s.InstanceID, s.Port
				out = append(out, v)
			}
		}
	}
	return out
}

// verdict turns HAProxy's view of a server into the target's health, given what the double
// shows now: UP (also while failing but not yet DOWN) is healthy; DOWN is unhealthy once a
// check failed or after it was healthy, and stays what it was (initial, or unhealthy) while
// passing checks bring it back up. Draining, maintenance and unused targets are the double's.
func verdict(now string, s lab.ServerStat) (awsdouble.TargetVerdict, bool) {
	switch now {
	case "initial", "healthy", "unhealthy":
	default:
		return awsdouble.TargetVerdict{}, false
	}
	switch s.Status {
	case "UP", "NOLB", "no check":
		return awsdouble.TargetVerdict{State: "healthy"}, true
	case "DOWN":
	default: // DRAIN, MAINT: deregistered, the double's to say
		return awsdouble.TargetVerdict{}, false
	}
	v := awsdouble.TargetVerdict{State: "unhealthy", Reason: "Target.FailedHealthChecks", Description: "Health checks failed"}
	switch c := s.CheckStatus; {
	case strings.HasSuffix(c, "TOUT"):
		v.Reason, v.Description = "Target.Timeout", "Request timed out"
	case c == "L7STS":
		v.Reason, v.Description = "Target.ResponseCodeMismatch", fmt.Sprintf("Health checks failed with these codes: [%d]", s.CheckCode)
	case c == "" || c == "INI" || c == "UNK" || strings.HasSuffix(c, "OK"):
		if now == "initial" {
			return awsdouble.TargetVerdict{}, false // not failed yet: still initial
		}
		if now == "unhealthy" {
			return awsdouble.TargetVerdict{}, false // passing again, not yet up: keep the reason
		}
	}
	return v, true
}
