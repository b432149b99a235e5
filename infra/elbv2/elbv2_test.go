package elbv2_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/iam"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/wait"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// defaultSubnets are the double's default VPC subnets, one per zone.
var defaultSubnets = []string{"subnet-000000000000def00", "subnet-000000000000def01"}

var run = runtag.Run{ID: "r1", App: "app", CreatedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), Lifetime: 30 * time.Minute}

// fleet is an AWS double whose load balancers run a second in a millisecond, its EC2 client
// for the hosts, and the package under test.
type fleet struct {
	t     *testing.T
	d     *awsdouble.Double
	ec2   *ec2.Client
	elb   *elb.Client
	b     *elbv2.Balancers
	group string // the load balancer's security group

	mu   sync.Mutex
	down map[string]bool // instances whose health checks fail
	seen []string        // "INSTANCE STATE" at each change the double reported
}

var fast = wait.Poll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: 5 * time.Second}

func fastTiming() elbv2.Timing {
	return elbv2.Timing{Available: fast, InService: fast, Deregistered: fast, Deleted: fast, GroupDelete: fast}
}

func newFleet(t *testing.T, o awsdouble.Options) *fleet {
	t.Helper()
	if o.ELBv2 == (awsdouble.ELBv2Options{}) {
		o.ELBv2 = awsdouble.ELBv2Options{Second: time.Millisecond, Provisioning: 20 * time.Millisecond, Deleting: 5 * time.Millisecond, InUseAttempts: 2}
	}
	d := awsdouble.New(o)
	t.Cleanup(d.Close)
	f := &fleet{t: t, d: d, ec2: ec2.NewFromConfig(d.Config()), elb: elb.NewFromConfig(d.Config()), down: map[string]bool{}}
	d.CheckTarget = func(_ context.Context, c awsdouble.TargetCheck) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.down[c.InstanceID] {
			return fmt.Errorf("%w: [503]", awsdouble.ErrResponseCodeMismatch)
		}
		return nil
	}
	d.AfterTargetChange = func(string) {
		for _, g := range d.TargetGroups() {
			for _, tg := range g.Targets {
				f.mu.Lock()
				f.seen = append(f.seen, tg.InstanceID+" "+tg.State)
				f.mu.Unlock()
			}
		}
	}
	f.b = elbv2.NewFromConfig(d.Config(), elbv2.Options{Timing: fastTiming(), Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	sg, err := f.ec2.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String("deploydrill-r1-lb"),
		Description: aws.String("the load balancer"), VpcId: aws.String("vpc-0000000000000def0")})
	if err != nil {
		t.Fatal(err)
	}
	f.group = aws.ToString(sg.GroupId)
	return f
}

func (f *fleet) setDown(id string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[id] = down
}

// hosts launches n running instances in the default VPC.
func (f *fleet) hosts(n int) []string {
	f.t.Helper()
	var ids []string
	for range n {
		out, err := f.ec2.RunInstances(f.t.Context(), &ec2.RunInstancesInput{ImageId: aws.String(awsdouble.UbuntuAMI),
			InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
		if err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.Instances[0].InstanceId))
	}
	w := ec2.NewInstanceRunningWaiter(f.ec2, func(o *ec2.InstanceRunningWaiterOptions) { o.MinDelay, o.MaxDelay = time.Millisecond, time.Millisecond })
	if err := w.Wait(f.t.Context(), &ec2.DescribeInstancesInput{InstanceIds: ids}, 5*time.Second); err != nil {
		f.t.Fatal(err)
	}
	return ids
}

func (f *fleet) spec() elbv2.FleetSpec {
	return elbv2.FleetSpec{Run: run, SubnetIDs: defaultSubnets, SecurityGroupIDs: []string{f.group}}
}

// assertClean checks the double holds nothing of the run and served only what IAM allows.
func (f *fleet) assertClean() {
	f.t.Helper()
	if left := f.d.ELBv2Leftovers(runtag.KeyRunID, run.ID); len(left) > 0 {
		f.t.Errorf("left behind: %v", left)
	}
	if err := iam.Refuses(f.d.Operations()); err != nil {
		f.t.Errorf("the double's calls: %v", err)
	}
}

func (f *fleet) deleteAll(ctx context.Context, lb *elbv2.Balancer) {
	f.t.Helper()
	for _, del := range []func() error{
		func() error { return f.b.DeleteListener(ctx, lb.ListenerARN) },
		func() error { return f.b.DeleteLoadBalancer(ctx, lb.LoadBalancerARN) },
		func() error { return f.b.DeleteTargetGroup(ctx, lb.TargetGroupARN) },
	} {
		if err := del(); err != nil {
			f.t.Fatal(err)
		}
	}
}

func states(ts []elbv2.TargetState) map[string]string {
	m := map[string]string{}
	for _, s := range ts {
		m[s.InstanceID] = s.State
	}
	return m
}

func TestFleetHappyPath(t *testing.T) {
	tests := []struct {
		name string
		opts awsdouble.Options
	}{
		{"a calm account", awsdouble.Options{}},
		{"a fifth of all calls throttled", awsdouble.Options{Throttle: 0.2, Seed: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t, tt.opts)
			ids := f.hosts(3)
			ctx := t.Context()
			lb, err := f.b.CreateFleetBalancer(ctx, f.spec())
			if err != nil {
				t.Fatal(err)
			}
			if lb.DNSName == "" || lb.ListenerARN == "" || lb.TargetGroupARN == "" || lb.ActiveAfter <= 0 {
				t.Errorf("balancer %+v: want a DNS name, a listener, a target group and the time it took", lb)
			}
			got := f.d.LoadBalancers()
			if len(got) != 1 || got[0].State != "active" || got[0].Scheme != "internet-facing" || len(got[0].Subnets) != 2 ||
				!slices.Equal(got[0].SecurityGroups, []string{f.group}) || len(got[0].Listeners) != 1 || got[0].Listeners[0].Port != 80 {
				t.Errorf("load balancers %+v: want one active internet-facing ALB in two subnets with a listener on :80", got)
			}
			for _, tags := range []map[string]string{got[0].Tags, got[0].Listeners[0].Tags} {
				if tags[runtag.KeyCreatedBy] != runtag.CreatedBy || tags[runtag.KeyRunID] != run.ID {
					t.Errorf("tags %v: want the run's tags at creation", tags)
				}
			}
			tg := f.d.TargetGroups()
			if len(tg) != 1 || tg[0].HealthCheckPath != "/health" || tg[0].Interval != 5*time.Millisecond || tg[0].Timeout != 2*time.Millisecond ||
				tg[0].HealthyThreshold != 2 || tg[0].UnhealthyThreshold != 2 || tg[0].DeregistrationDelay != 30*time.Millisecond ||
				tg[0].Port != 80 || tg[0].LoadBalancerARN != lb.LoadBalancerARN || tg[0].Tags[runtag.KeyRunID] != run.ID {
				t.Errorf("target groups %+v: want the defaults (/health, 5 s, 2 s, 2, 2, 30 s draining) behind the load balancer", tg)
			}

			if err := lb.Register(ctx, ids); err != nil {
				t.Fatal(err)
			}
			health, err := lb.TargetHealth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(health) != 3 || slices.ContainsFunc(health, func(s elbv2.TargetState) bool { return !s.Healthy() }) {
				t.Fatalf("target health %+v: want 3 healthy", health)
			}

			start := time.Now()
			if err := lb.Deregister(ctx, ids[:1]); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < 30*time.Millisecond {
				t.Errorf("deregistering took %s: it must wait for the 30 s (here ms) of draining", took)
			}
			health, err = lb.TargetHealth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{ids[1]: "healthy", ids[2]: "healthy"}; fmt.Sprint(states(health)) != fmt.Sprint(want) {
				t.Errorf("after draining %s: %v, want %v", ids[0], states(health), want)
			}

			f.deleteAll(ctx, lb)
			f.deleteAll(ctx, lb) // idempotent: gone counts as deleted
			f.assertClean()
			if lbs, tgs := f.d.LoadBalancers(), f.d.TargetGroups(); len(lbs)+len(tgs) != 0 {
				t.Errorf("left %v and %v", lbs, tgs)
			}
		})
	}
}

// TestDrainingIsVisible: while a deregistered target drains, DescribeTargetHealth says so, and
// the double reports each change.
func TestDrainingIsVisible(t *testing.T) {
	f := newFleet(t, awsdouble.Options{})
	ids := f.hosts(2)
	spec := f.spec()
	spec.DeregistrationDelay = 3 * time.Second // 3 ms here
	lb, err := f.b.CreateFleetBalancer(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Register(t.Context(), ids); err != nil {
		t.Fatal(err)
	}
	if err := lb.Deregister(t.Context(), ids[:1]); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	all := slices.Clone(f.seen)
	f.mu.Unlock()
	for _, want := range []string{ids[0] + " initial", ids[0] + " healthy", ids[0] + " draining"} {
		if !slices.Contains(all, want) {
			t.Errorf("changes %v: want %q among them", all, want)
		}
	}
}

func TestHealthChecksFollowTheThresholds(t *testing.T) {
	f := newFleet(t, awsdouble.Options{})
	ids := f.hosts(2)
	lb, err := f.b.CreateFleetBalancer(t.Context(), f.spec())
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Register(t.Context(), ids); err != nil {
		t.Fatal(err)
	}
	f.setDown(ids[0], true)
	poll := wait.Poll{Initial: time.Millisecond, Max: 2 * time.Millisecond, Timeout: 5 * time.Second}
	var last []elbv2.TargetState
	err = poll.Run(t.Context(), ids[0]+" to turn unhealthy", func(ctx context.Context) (bool, error) {
		last, err = lb.TargetHealth(ctx)
		return err == nil && states(last)[ids[0]] == "unhealthy", err
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := last[slices.IndexFunc(last, func(s elbv2.TargetState) bool { return s.InstanceID == ids[0] })]; s.Reason != "Target.ResponseCodeMismatch" {
		t.Errorf("unhealthy for %q (%s), want Target.ResponseCodeMismatch", s.Reason, s.Description)
	}
	if states(last)[ids[1]] != "healthy" {
		t.Errorf("the other target: %v", last)
	}
	f.setDown(ids[0], false)
	err = poll.Run(t.Context(), ids[0]+" to be healthy again", func(ctx context.Context) (bool, error) {
		last, err = lb.TargetHealth(ctx)
		return err == nil && states(last)[ids[0]] == "healthy", err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWaitsEndWithTheirDeadline: every wait is bounded and says what it waited for and how long.
func TestWaitsEndWithTheirDeadline(t *testing.T) {
	short := wait.Poll{Initial: time.Millisecond, Max: 5 * time.Millisecond, Timeout: 50 * time.Millisecond}
	t.Run("the load balancer never becomes active", func(t *testing.T) {
		f := newFleet(t, awsdouble.Options{ELBv2: awsdouble.ELBv2Options{Second: time.Millisecond, Provisioning: time.Hour}})
		timing := fastTiming()
		timing.Available = short
		b := elbv2.NewFromConfig(f.d.Config(), elbv2.Options{Timing: timing})
		lb, err := b.CreateFleetBalancer(t.Context(), f.spec())
		want := "timed out after 50ms waiting for load balancer deploydrill-r1 to become active"
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want %q wrapping context.DeadlineExceeded", err, want)
		}
		if lb == nil || lb.LoadBalancerARN == "" || lb.ListenerARN == "" {
			t.Fatalf("the failed create must still name what it made: %+v", lb)
		}
		f.deleteAll(t.Context(), lb)
		f.assertClean()
	})
	t.Run("a target never becomes healthy", func(t *testing.T) {
		f := newFleet(t, awsdouble.Options{})
		ids := f.hosts(2)
		timing := fastTiming()
		timing.InService = short
		b := elbv2.NewFromConfig(f.d.Config(), elbv2.Options{Timing: timing})
		lb, err := b.CreateFleetBalancer(t.Context(), f.spec())
		if err != nil {
			t.Fatal(err)
		}
		f.setDown(ids[1], true)
		err = lb.Register(t.Context(), ids)
		want := fmt.Sprintf("timed out after 50ms waiting for %v to be healthy in deploydrill-r1", ids)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ids[1]+" unhealthy (Target.ResponseCodeMismatch)") {
			t.Fatalf("err = %v, want %q and what the targets are now", err, want)
		}
		f.deleteAll(t.Context(), lb)
	})
	t.Run("draining outlasts its margin", func(t *testing.T) {
		f := newFleet(t, awsdouble.Options{})
		ids := f.hosts(1)
		timing := fastTiming()
		timing.Deregistered = short
		b := elbv2.NewFromConfig(f.d.Config(), elbv2.Options{Timing: timing})
		spec := f.spec()
		spec.DeregistrationDelay = time.Hour // an hour of drain
		lb, err := b.CreateFleetBalancer(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := lb.Register(t.Context(), ids); err != nil {
			t.Fatal(err)
		}
		lb.DeregistrationDelay = 0 // (here an hour is 3.6 s: wait for the margin alone)
		err = lb.Deregister(t.Context(), ids)
		want := fmt.Sprintf("timed out after 50ms waiting for %v to drain from deploydrill-r1", ids)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		f.deleteAll(t.Context(), lb)
	})
	t.Run("the caller's deadline ends a drain", func(t *testing.T) {
		f := newFleet(t, awsdouble.Options{})
		ids := f.hosts(1)
		spec := f.spec()
		spec.DeregistrationDelay = time.Hour
		lb, err := f.b.CreateFleetBalancer(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := lb.Register(t.Context(), ids); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		err = lb.Deregister(ctx, ids)
		if err == nil || !strings.HasPrefix(err.Error(), "timed out after ") || !strings.Contains(err.Error(), "to drain from") {
			t.Fatalf("err = %v, want a timeout waiting for the drain", err)
		}
		ctx, cancel = context.WithCancel(t.Context())
		cancel()
		if err := lb.Deregister(ctx, ids); err == nil {
			t.Fatal("a cancelled deregister succeeded")
		}
		f.deleteAll(t.Context(), lb)
	})
	t.Run("a target group its listener keeps in use", func(t *testing.T) {
		f := newFleet(t, awsdouble.Options{})
		timing := fastTiming()
		timing.GroupDelete = short
		b := elbv2.NewFromConfig(f.d.Config(), elbv2.Options{Timing: timing})
		lb, err := b.CreateFleetBalancer(t.Context(), f.spec())
		if err != nil {
			t.Fatal(err)
		}
		err = b.DeleteTargetGroup(t.Context(), lb.TargetGroupARN)
		want := "timed out after 50ms waiting for target group " + lb.TargetGroupARN + " to be released"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "ResourceInUse") {
			t.Fatalf("err = %v, want %q with the last ResourceInUse", err, want)
		}
		f.deleteAll(t.Context(), lb)
		f.assertClean()
	})
}

// TestTargetGroupDeleteOutlastsItsListener: the target group is deleted while its listener is
// still there; DeleteTargetGroup retries ResourceInUse until the listener (here deleted
// meanwhile) and then the load balancer have let go of it.
func TestTargetGroupDeleteOutlastsItsListener(t *testing.T) {
	f := newFleet(t, awsdouble.Options{})
	lb, err := f.b.CreateFleetBalancer(t.Context(), f.spec())
	if err != nil {
		t.Fatal(err)
	}
	attempts := 0
	f.d.AfterOp = func(op string, _ *http.Request) {
		if op != "elasticloadbalancing:DeleteTargetGroup" {
			return
		}
		if attempts++; attempts == 3 {
			go func() { // the rest of a teardown, meanwhile
				_ = f.b.DeleteLoadBalancer(context.Background(), lb.LoadBalancerARN)
			}()
		}
	}
	if err := f.b.DeleteTargetGroup(t.Context(), lb.TargetGroupARN); err != nil {
		t.Fatal(err)
	}
	if attempts < 3+2 { // three while the listener was there, two more (InUseAttempts) after the load balancer went
		t.Errorf("%d DeleteTargetGroup attempts: want ResourceInUse retried past the listener and the load balancer", attempts)
	}
	f.d.AfterOp = nil
	f.deleteAll(t.Context(), lb)
	f.assertClean()
}

func TestCreateRefusedLeavesALedger(t *testing.T) {
	for _, op := range []string{"CreateLoadBalancer", "CreateTargetGroup", "ModifyTargetGroupAttributes", "CreateListener", "DescribeLoadBalancers"} {
		t.Run(op, func(t *testing.T) {
			f := newFleet(t, awsdouble.Options{})
			f.d.Inject(awsdouble.Fault{Op: "elasticloadbalancing:" + op, Code: "AccessDenied", Status: 403, Message: "injected: not authorized"})
			lb, err := f.b.CreateFleetBalancer(t.Context(), f.spec())
			if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
				t.Fatalf("err = %v, want the injected AccessDenied", err)
			}
			f.d.ClearFaults()
			if lb == nil {
				t.Fatal("no ledger")
			}
			led := lb.Ledger()
			var arns []string
			for _, r := range led {
				arns = append(arns, r.ARN)
			}
			found, err := f.b.Find(t.Context(), runtag.Selector{RunID: run.ID})
			if err != nil {
				t.Fatal(err)
			}
			var foundARNs []string
			for _, r := range found.All() {
				foundARNs = append(foundARNs, r.ARN)
			}
			if !slices.Equal(arns, foundARNs) {
				t.Errorf("ledger %v, but the tags find %v", arns, foundARNs)
			}
			f.deleteAll(t.Context(), lb)
			f.assertClean()
		})
	}
}

func TestFindTakesOnlyWhatTheToolTagged(t *testing.T) {
	f := newFleet(t, awsdouble.Options{})
	lb, err := f.b.CreateFleetBalancer(t.Context(), f.spec())
	if err != nil {
		t.Fatal(err)
	}
	other := run
	other.ID = "r2"
	spec := f.spec()
	spec.Run = other
	lb2, err := f.b.CreateFleetBalancer(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's load balancer and target group, named like ours.
	if _, err := f.elb.CreateLoadBalancer(t.Context(), &elb.CreateLoadBalancerInput{Name: aws.String("deploydrill-r3"), Subnets: defaultSubnets,
		SecurityGroups: []string{f.group}, Tags: []elbtypes.Tag{{Key: aws.String(runtag.KeyRunID), Value: aws.String("r1")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.elb.CreateTargetGroup(t.Context(), &elb.CreateTargetGroupInput{Name: aws.String("deploydrill-r3"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(80), VpcId: aws.String("vpc-0000000000000def0")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sel  runtag.Selector
		want []string
	}{
		{"one run", runtag.Selector{RunID: "r1"}, []string{"listener deploydrill-r1:80", "load balancer deploydrill-r1", "target group deploydrill-r1"}},
		{"every run of the tool", runtag.Selector{}, []string{"listener deploydrill-r1:80", "listener deploydrill-r2:80",
			"load balancer deploydrill-r1", "load balancer deploydrill-r2", "target group deploydrill-r1", "target group deploydrill-r2"}},
		{"expired ones", runtag.Selector{Expired: true, Now: run.CreatedAt.Add(time.Minute)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, err := f.b.Find(t.Context(), tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range found.All() {
				got = append(got, r.Kind+" "+r.Name)
				if r.RunID == "" {
					t.Errorf("%s without its run id", r.ARN)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("found %v, want %v", got, tt.want)
			}
		})
	}
	f.deleteAll(t.Context(), lb)
	f.deleteAll(t.Context(), lb2)
}

func TestSpecIsCheckedBeforeAnyCall(t *testing.T) {
	ok := elbv2.FleetSpec{Run: run, SubnetIDs: defaultSubnets, SecurityGroupIDs: []string{"sg-1"}}
	tests := []struct {
		name string
		edit func(*elbv2.FleetSpec)
		want string
	}{
		{"one subnet", func(s *elbv2.FleetSpec) { s.SubnetIDs = s.SubnetIDs[:1] }, "two or more"},
		{"no security group", func(s *elbv2.FleetSpec) { s.SecurityGroupIDs = nil }, "no security group"},
		{"a fractional interval", func(s *elbv2.FleetSpec) { s.Health.Interval = 5500 * time.Millisecond }, "health check interval 5.5s"},
		{"an interval under ALB's minimum", func(s *elbv2.FleetSpec) { s.Health.Interval = 2 * time.Second }, "health check interval 2s"},
		{"a timeout as long as the interval", func(s *elbv2.FleetSpec) { s.Health.Timeout = 5 * time.Second }, "shorter than the interval"},
		{"a threshold of one", func(s *elbv2.FleetSpec) { s.Health.UnhealthyThreshold = 1 }, "unhealthy threshold 1"},
		{"a path that is not one", func(s *elbv2.FleetSpec) { s.Health.Path = "health" }, `path "health"`},
		{"a drain over an hour", func(s *elbv2.FleetSpec) { s.DeregistrationDelay = 2 * time.Hour }, "deregistration delay 2h0m0s"},
		{"a port out of range", func(s *elbv2.FleetSpec) { s.Port = 70000 }, "port 70000"},
		{"no run", func(s *elbv2.FleetSpec) { s.Run = runtag.Run{} }, "run id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			err := s.Validate()
			if err == nil || !errors.Is(err, elbv2.ErrInvalidSpec) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: %v, want ErrInvalidSpec saying %s", err, tt.want)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("the valid spec was refused: %v", err)
	}
	noDrain := ok
	noDrain.DeregistrationDelay = elbv2.NoDraining
	if err := noDrain.Validate(); err != nil {
		t.Errorf("NoDraining was refused: %v", err)
	}
}

func TestNameFitsElasticLoadBalancing(t *testing.T) {
	for _, id := range []string{"r1", runtag.NewID(run.CreatedAt), "a-rather-long-run-id-of-forty-eight-characters-x", "ends-with-a-hyphen-"} {
		r := run
		r.ID = id
		name := elbv2.Name(r)
		if len(name) > 32 || strings.HasSuffix(name, "-") || strings.HasPrefix(name, "internal-") || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			t.Errorf("Name(%q) = %q: not an ELB name", id, name)
		}
		if len(r.ResourceName()) <= 32 && !strings.HasSuffix(id, "-") && name != r.ResourceName() {
			t.Errorf("Name(%q) = %q, want the run's resource name %q when it fits", id, name, r.ResourceName())
		}
	}
	a, b := run, run
	a.ID, b.ID = "a-rather-long-run-id-of-forty-eight-characters-x", "a-rather-long-run-id-of-forty-eight-characters-y"
	if elbv2.Name(a) == elbv2.Name(b) {
		t.Errorf("two long run ids share the name %q", elbv2.Name(a))
	}
}
