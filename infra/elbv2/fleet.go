package elbv2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/steps"
)

// HealthCheck is the target group's health check. Zero values take the defaults noted, which
// make a faulty host leave the rotation within about Interval × UnhealthyThreshold (10 s) and
// a fixed one rejoin within Interval × HealthyThreshold. AWS's own defaults (30 s, 5 healthy)
// would make a drill wait minutes.
type HealthCheck struct {
	Path               string        // default /health
	Interval           time.Duration // 5 s to 300 s, whole seconds; default 5 s
	Timeout            time.Duration // 2 s to 120 s, shorter than Interval; default 2 s
	HealthyThreshold   int32         // consecutive passes to become healthy, 2 to 10; default 2
	UnhealthyThreshold int32         // consecutive failures to become unhealthy, 2 to 10; default 2
}

// Defaults of a FleetSpec.
const (
	DefaultHealthPath          = "/health"
	DefaultInterval            = 5 * time.Second
	DefaultTimeout             = 2 * time.Second
	DefaultHealthyThreshold    = 2
	DefaultUnhealthyThreshold  = 2
	DefaultDeregistrationDelay = 30 * time.Second
	DefaultPort                = 80
)

// FleetSpec is what CreateFleetBalancer is asked for. Zero values take the defaults noted.
type FleetSpec struct {
	// Run names and tags everything.
	Run runtag.Run
	// SubnetIDs are where the load balancer lives: two or more, in different Availability
	// Zones of one VPC (the default VPC's public subnets); the target group is in that VPC.
	SubnetIDs []string
	// SecurityGroupIDs are the load balancer's (infra/ec2 creates them): at least one, letting
	// the clients in on ListenerPort; the hosts' group should admit only these on Port.
	SecurityGroupIDs []string
	Port             int32 // the hosts' port that gets the traffic and the health checks; default 80
	ListenerPort     int32 // the load balancer's port; default 80
	Health           HealthCheck
	// DeregistrationDelay is how long a deregistered target drains (in-flight requests
	// finish, no new ones arrive); 0 s to 3600 s, whole seconds; default 30 s (AWS's: 300 s).
	// Zero takes the default: use NoDraining for none.
	DeregistrationDelay time.Duration
}

// NoDraining is a DeregistrationDelay of zero.
const NoDraining time.Duration = -1

// ErrInvalidSpec marks a FleetSpec refused before any call to AWS.
var ErrInvalidSpec = errors.New("invalid fleet spec")

func (s FleetSpec) withDefaults() FleetSpec {
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.ListenerPort == 0 {
		s.ListenerPort = DefaultPort
	}
	h := &s.Health
	if h.Path == "" {
		h.Path = DefaultHealthPath
	}
	if h.Interval == 0 {
		h.Interval = DefaultInterval
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultTimeout
	}
	if h.HealthyThreshold == 0 {
		h.HealthyThreshold = DefaultHealthyThreshold
	}
	if h.UnhealthyThreshold == 0 {
		h.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	switch s.DeregistrationDelay {
	case 0:
		s.DeregistrationDelay = DefaultDeregistrationDelay
	case NoDraining:
		s.DeregistrationDelay = 0
	}
	return s
}

// Validate checks the spec's shape, defaults applied, without calling AWS (whether the subnets
// are in two zones is AWS's to say). Its errors wrap ErrInvalidSpec.
func (s FleetSpec) Validate() error {
	var errs []error
	if err := s.Run.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(s.SubnetIDs) < 2 {
		errs = append(errs, fmt.Errorf("subnets %v: an application load balancer needs two or more, in different availability zones", s.SubnetIDs))
	}
	if len(s.SecurityGroupIDs) == 0 {
		errs = append(errs, errors.New("no security group for the load balancer: the VPC's default group would not let clients in"))
	}
	errs = append(errs, s.checkSettings()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	return nil
}

// CheckSettings checks the ports, health check and deregistration delay alone, defaults
// applied: what a caller can check before the run, the subnets and groups not known yet. Its
// errors wrap ErrInvalidSpec.
func (s FleetSpec) CheckSettings() error {
	if err := errors.Join(s.checkSettings()...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	return nil
}

func (s FleetSpec) checkSettings() []error {
	s = s.withDefaults()
	var errs []error
	for _, p := range []struct {
		name string
		port int32
	}{{"port", s.Port}, {"listener port", s.ListenerPort}} {
		if p.port < 1 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want 1 to 65535", p.name, p.port))
		}
	}
	h := s.Health
	if !strings.HasPrefix(h.Path, "/") || len(h.Path) > 1024 {
		errs = append(errs, fmt.Errorf("health check path %q: want an absolute path", h.Path))
	}
	within := func(what string, d, lo, hi time.Duration) {
		if d < lo || d > hi || d%time.Second != 0 {
			errs = append(errs, fmt.Errorf("%s %s: want whole seconds from %s to %s", what, d, lo, hi))
		}
	}
	within("health check interval", h.Interval, 5*time.Second, 300*time.Second)
	within("health check timeout", h.Timeout, 2*time.Second, 120*time.Second)
	within("deregistration delay", s.DeregistrationDelay, 0, time.Hour)
	if h.Timeout >= h.Interval {
		errs = append(errs, fmt.Errorf("health check timeout %s: must be shorter than the interval %s", h.Timeout, h.Interval))
	}
	for _, t := range []struct {
		name string
		n    int32
	}{{"healthy threshold", h.HealthyThreshold}, {"unhealthy threshold", h.UnhealthyThreshold}} {
		if t.n < 2 || t.n > 10 {
			errs = append(errs, fmt.Errorf("%s %d: want 2 to 10", t.name, t.n))
		}
	}
	return errs
}

// Name is the run's load balancer and target group name: Elastic Load Balancing allows 32
// letters, digits and hyphens, so a long run id is cut and made unique again with a hash.
func Name(run runtag.Run) string {
	name := run.ResourceName()
	if len(name) <= 32 && !strings.HasSuffix(name, "-") {
		return name
	}
	sum := sha256.Sum256([]byte(run.ID))
	return strings.TrimRight(name[:min(len(name), 23)], "-") + "-" + hex.EncodeToString(sum[:4])
}

// Balancer is a fleet's load balancer, target group and listener: what CreateFleetBalancer
// made, known to teardown even when it failed part way (the ARNs of what exists are set).
// Register, Deregister and TargetHealth work on the Balancer CreateFleetBalancer returned.
type Balancer struct {
	RunID           string
	Name            string // the load balancer's and the target group's
	LoadBalancerARN string
	DNSName         string // where clients reach the fleet, on ListenerPort
	TargetGroupARN  string
	ListenerARN     string
	VpcID           string
	Port            int32 // the hosts' port
	ListenerPort    int32
	// DeregistrationDelay is how long Deregister waits for draining (plus a margin).
	DeregistrationDelay time.Duration
	// ActiveAfter is how long the load balancer took to become active.
	ActiveAfter time.Duration

	b *Balancers
}

// CreateFleetBalancer creates the load balancer, its target group and its listener, and
// returns once the load balancer is active. On failure the returned Balancer holds what was
// created, for teardown; everything is tagged at creation.
func (b *Balancers) CreateFleetBalancer(ctx context.Context, spec FleetSpec) (*Balancer, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec = spec.withDefaults()
	c := &create{b: b, spec: spec, lb: &Balancer{RunID: spec.Run.ID, Name: Name(spec.Run), Port: spec.Port,
		ListenerPort: spec.ListenerPort, DeregistrationDelay: spec.DeregistrationDelay, b: b}}
	if err := steps.Run(ctx, "create fleet balancer",
		steps.Step{Name: "create load balancer", Run: c.createLoadBalancer},
		steps.Step{Name: "create target group", Run: c.createTargetGroup},
		steps.Step{Name: "set deregistration delay", Run: c.setDeregistrationDelay},
		steps.Step{Name: "create listener", Run: c.createListener},
		steps.Step{Name: "wait until active", Run: c.waitActive},
	); err != nil {
		return c.lb, err
	}
	b.log.Info("load balancer active", "name", c.lb.Name, "dns", c.lb.DNSName, "after", c.lb.ActiveAfter)
	return c.lb, nil
}

// create carries one CreateFleetBalancer through its steps.
type create struct {
	b    *Balancers
	spec FleetSpec
	lb   *Balancer
}

func tags(run runtag.Run) []types.Tag {
	var out []types.Tag
	for _, t := range run.Tags() {
		out = append(out, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	return out
}

func (c *create) createLoadBalancer(ctx context.Context) error {
	out, err := c.b.api.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		Name:           aws.String(c.lb.Name),
		Type:           types.LoadBalancerTypeEnumApplication,
		Scheme:         types.LoadBalancerSchemeEnumInternetFacing,
		IpAddressType:  types.IpAddressTypeIpv4,
		Subnets:        c.spec.SubnetIDs,
		SecurityGroups: c.spec.SecurityGroupIDs,
		Tags:           tags(c.spec.Run),
	})
	if err != nil {
		return fmt.Errorf("create load balancer %s in %v: %w", c.lb.Name, c.spec.SubnetIDs, err)
	}
	if len(out.LoadBalancers) != 1 {
		return fmt.Errorf("create load balancer %s: got %d load balancers, want 1", c.lb.Name, len(out.LoadBalancers))
	}
	got := out.LoadBalancers[0]
	c.lb.LoadBalancerARN, c.lb.DNSName, c.lb.VpcID = aws.ToString(got.LoadBalancerArn), aws.ToString(got.DNSName), aws.ToString(got.VpcId)
	c.b.log.Info("load balancer created", "name", c.lb.Name, "dns", c.lb.DNSName)
	return nil
}

func (c *create) createTargetGroup(ctx context.Context) error {
	h := c.spec.Health
	out, err := c.b.api.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name:                       aws.String(c.lb.Name),
		Protocol:                   types.ProtocolEnumHttp,
		Port:                       aws.Int32(c.spec.Port),
		VpcId:                      aws.String(c.lb.VpcID),
		TargetType:                 types.TargetTypeEnumInstance,
		HealthCheckEnabled:         aws.Bool(true),
		HealthCheckProtocol:        types.ProtocolEnumHttp,
		HealthCheckPort:            aws.String("traffic-port"),
		HealthCheckPath:            aws.String(h.Path),
		HealthCheckIntervalSeconds: aws.Int32(int32(h.Interval / time.Second)),
		HealthCheckTimeoutSeconds:  aws.Int32(int32(h.Timeout / time.Second)),
		HealthyThresholdCount:      aws.Int32(h.HealthyThreshold),
		UnhealthyThresholdCount:    aws.Int32(h.UnhealthyThreshold),
		Matcher:                    &types.Matcher{HttpCode: aws.String("200")},
		Tags:                       tags(c.spec.Run),
	})
	if err != nil {
		return fmt.Errorf("create target group %s: %w", c.lb.Name, err)
	}
	if len(out.TargetGroups) != 1 {
		return fmt.Errorf("create target group %s: got %d target groups, want 1", c.lb.Name, len(out.TargetGroups))
	}
	c.lb.TargetGroupARN = aws.ToString(out.TargetGroups[0].TargetGroupArn)
	return nil
}

func (c *create) setDeregistrationDelay(ctx context.Context) error {
	seconds := strconv.Itoa(int(c.spec.DeregistrationDelay / time.Second))
	_, err := c.b.api.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{
		TargetGroupArn: aws.String(c.lb.TargetGroupARN),
		Attributes:     []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String(seconds)}},
	})
	if err != nil {
		return fmt.Errorf("set deregistration delay of %s to %s s: %w", c.lb.Name, seconds, err)
	}
	return nil
}

func (c *create) createListener(ctx context.Context) error {
	out, err := c.b.api.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(c.lb.LoadBalancerARN),
		Protocol:        types.ProtocolEnumHttp,
		Port:            aws.Int32(c.spec.ListenerPort),
		DefaultActions:  []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(c.lb.TargetGroupARN)}},
		Tags:            tags(c.spec.Run),
	})
	if err != nil {
		return fmt.Errorf("create listener :%d on %s: %w", c.spec.ListenerPort, c.lb.Name, err)
	}
	if len(out.Listeners) != 1 {
		return fmt.Errorf("create listener :%d on %s: got %d listeners, want 1", c.spec.ListenerPort, c.lb.Name, len(out.Listeners))
	}
	c.lb.ListenerARN = aws.ToString(out.Listeners[0].ListenerArn)
	return nil
}

func (c *create) waitActive(ctx context.Context) error {
	t, start := c.b.timing.Available, time.Now()
	w := elb.NewLoadBalancerAvailableWaiter(c.b.api, func(o *elb.LoadBalancerAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = t.Initial, max(t.Max, t.Initial)
	})
	err := w.Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{c.lb.LoadBalancerARN}}, t.Timeout)
	if err != nil {
		return waited(ctx, err, start, t.Timeout, "load balancer "+c.lb.Name+" to become active")
	}
	c.lb.ActiveAfter = time.Since(start)
	return nil
}
