package awsdouble_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

var subnets = []string{"subnet-000000000000def00", "subnet-000000000000def01"}

const defaultVPC = "vpc-0000000000000def0"

func quickELB() awsdouble.ELBv2Options {
	return awsdouble.ELBv2Options{Second: time.Millisecond, Provisioning: -1}
}

// balancer creates a load balancer, a target group of port and a listener forwarding to it.
func balancer(t *testing.T, c *elb.Client, name string, port int32, groups ...string) (lbARN, tgARN, listenerARN string) {
	t.Helper()
	ctx := t.Context()
	lb, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(name), Subnets: subnets, SecurityGroups: groups})
	if err != nil {
		t.Fatalf("create load balancer: %v", err)
	}
	tg, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(port), VpcId: aws.String(defaultVPC), HealthCheckPath: aws.String("/health"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		t.Fatalf("create target group: %v", err)
	}
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(80), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroups[0].TargetGroupArn}}})
	if err != nil {
		t.Fatalf("create listener: %v", err)
	}
	return *lb.LoadBalancers[0].LoadBalancerArn, *tg.TargetGroups[0].TargetGroupArn, *l.Listeners[0].ListenerArn
}

func runningInstance(t *testing.T, c *ec2.Client) string {
	t.Helper()
	out, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String(awsdouble.UbuntuAMI), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType: types.InstanceTypeT3Micro})
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	if _, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); err != nil { // pending → running
		t.Fatal(err)
	}
	return id
}

func TestELBv2AnswersLikeAWS(t *testing.T) {
	d := start(t, awsdouble.Options{ELBv2: quickELB()})
	c := elb.NewFromConfig(d.Config())
	e := ec2.NewFromConfig(d.Config())
	ctx := t.Context()
	lbARN, tgARN, _ := balancer(t, c, "drill", 80)
	inst := runningInstance(t, e)
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"a load balancer in one zone", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("one"), Subnets: subnets[:1]})
			return err
		}, "ValidationError"},
		{"an unknown subnet", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("x"), Subnets: []string{"subnet-1", "subnet-2"}})
			return err
		}, "SubnetNotFound"},
		{"a name that is taken, with other settings", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("drill"), Subnets: subnets, Scheme: elbtypes.LoadBalancerSchemeEnumInternal})
			return err
		}, "DuplicateLoadBalancerName"},
		{"a name too long", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("a-name-that-is-longer-than-32-chars"), Subnets: subnets})
			return err
		}, "ValidationError"},
		{"an unknown load balancer by ARN", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{lbARN + "0"}})
			return err
		}, "LoadBalancerNotFound"},
		{"an unknown load balancer by name", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"nope"}})
			return err
		}, "LoadBalancerNotFound"},
		{"a timeout as long as the interval", func() error {
			_, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("tg"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
				VpcId: aws.String(defaultVPC), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(5)})
			return err
		}, "ValidationError"},
		{"a target group in use by its listener", func() error {
			_, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgARN)})
			return err
		}, "ResourceInUse"},
		{"a target that is no instance", func() error {
			_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgARN), Targets: []elbtypes.TargetDescription{{Id: aws.String("i-0123")}}})
			return err
		}, "InvalidTarget"},
		{"an unknown listener", func() error {
			_, err := c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(lbARN + "/x")})
			return err
		}, "ListenerNotFound"},
		{"tags of an unknown target group", func() error {
			_, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{tgARN + "0"}})
			return err
		}, "TargetGroupNotFound"},
		{"a second load balancer for the same target group", func() error {
			other, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("other"), Subnets: subnets})
			if err != nil {
				return err
			}
			_, err = c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: other.LoadBalancers[0].LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp,
				Port: aws.Int32(80), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgARN)}}})
			return err
		}, "TargetGroupAssociationLimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorCode(tt.call()); got != tt.code {
				t.Errorf("error code %q, want %q", got, tt.code)
			}
		})
	}

	t.Run("creates are idempotent", func(t *testing.T) {
		again, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("drill"), Subnets: subnets})
		if err != nil || *again.LoadBalancers[0].LoadBalancerArn != lbARN {
			t.Errorf("the same CreateLoadBalancer again: %v, %v; want the same load balancer", err, again)
		}
	})
	t.Run("a target not registered is unused", func(t *testing.T) {
		out, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN),
			Targets: []elbtypes.TargetDescription{{Id: aws.String(inst)}}})
		if err != nil {
			t.Fatal(err)
		}
		if h := out.TargetHealthDescriptions[0].TargetHealth; h.State != elbtypes.TargetHealthStateEnumUnused || h.Reason != elbtypes.TargetHealthReasonEnumNotRegistered {
			t.Errorf("health %+v, want unused, Target.NotRegistered", h)
		}
	})
	t.Run("deleting a load balancer twice succeeds", func(t *testing.T) {
		for range 2 {
			if _, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(lbARN)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{lbARN}}); errorCode(err) != "LoadBalancerNotFound" {
			t.Errorf("describe after delete: %v, want LoadBalancerNotFound", err)
		}
		if out, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lbARN)}); errorCode(err) != "LoadBalancerNotFound" {
			t.Errorf("listeners after delete: %v %v, want them gone with the load balancer", out, err)
		}
	})
}

func TestELBv2PagesAndThrottles(t *testing.T) {
	d := start(t, awsdouble.Options{ELBv2: quickELB(), PageSize: 2, Throttle: 0.3, Seed: 3})
	c := elb.NewFromConfig(d.Config())
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		if _, err := c.CreateLoadBalancer(t.Context(), &elb.CreateLoadBalancerInput{Name: aws.String(name), Subnets: subnets}); err != nil {
			t.Fatal(err)
		}
	}
	n, pages := 0, 0
	p := elb.NewDescribeLoadBalancersPaginator(c, &elb.DescribeLoadBalancersInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n, pages = n+len(out.LoadBalancers), pages+1
	}
	if n != 5 || pages != 3 {
		t.Errorf("%d load balancers in %d pages, want 5 in 3", n, pages)
	}
	// Without retries the throttling shows: ELBv2 says Throttling.
	raw := elb.NewFromConfig(d.Config(), func(o *elb.Options) { o.Retryer = aws.NopRetryer{} })
	throttled := 0
	for range 30 {
		if _, err := raw.DescribeLoadBalancers(t.Context(), &elb.DescribeLoadBalancersInput{}); err != nil {
			if errorCode(err) != "Throttling" {
				t.Fatalf("error %v, want Throttling", err)
			}
			if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
				t.Errorf("the SDK does not see %v as throttling", err)
			}
			throttled++
		}
	}
	if throttled == 0 {
		t.Error("no call was throttled")
	}
}

func TestALoadBalancerHoldsItsSecurityGroup(t *testing.T) {
	d := start(t, awsdouble.Options{ELBv2: quickELB(), DependencyAttempts: 1})
	c := elb.NewFromConfig(d.Config())
	e := ec2.NewFromConfig(d.Config())
	sg, err := e.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String("lb"), Description: aws.String("lb"), VpcId: aws.String(defaultVPC)})
	if err != nil {
		t.Fatal(err)
	}
	lbARN, _, _ := balancer(t, c, "drill", 80, *sg.GroupId)
	del := func() error {
		_, err := e.DeleteSecurityGroup(t.Context(), &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId})
		return err
	}
	if err := del(); errorCode(err) != "DependencyViolation" {
		t.Fatalf("deleting the group of a live load balancer: %v, want DependencyViolation", err)
	}
	if _, err := c.DeleteLoadBalancer(t.Context(), &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(lbARN)}); err != nil {
		t.Fatal(err)
	}
	if err := del(); errorCode(err) != "DependencyViolation" {
		t.Fatalf("right after the load balancer went: %v, want DependencyViolation (its interfaces go late)", err)
	}
	if err := del(); err != nil {
		t.Fatalf("then: %v", err)
	}
}

// TestDefaultHealthCheckIsAnHTTPGet: without a CheckTarget hook the double GETs the health path
// of the instance's address on the target group's port, as an ALB does.
func TestDefaultHealthCheckIsAnHTTPGet(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.Header.Get("User-Agent") != "ELB-HealthChecker/2.0" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	d := awsdouble.New(awsdouble.Options{ELBv2: awsdouble.ELBv2Options{Second: 2 * time.Millisecond, Provisioning: -1}})
	t.Cleanup(d.Close)
	d.OnRunInstances = func(string, []byte) (string, error) { return host, nil }
	c := elb.NewFromConfig(d.Config())
	_, tgARN, _ := balancer(t, c, "drill", int32(p))
	inst := runningInstance(t, ec2.NewFromConfig(d.Config()))
	if _, err := c.RegisterTargets(t.Context(), &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgARN),
		Targets: []elbtypes.TargetDescription{{Id: aws.String(inst)}}}); err != nil {
		t.Fatal(err)
	}
	state := func() elbtypes.TargetHealthStateEnum {
		out, err := c.DescribeTargetHealth(t.Context(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
		if err != nil {
			t.Fatal(err)
		}
		return out.TargetHealthDescriptions[0].TargetHealth.State
	}
	waitFor := func(want elbtypes.TargetHealthStateEnum) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		w := elb.NewTargetInServiceWaiter(c, func(o *elb.TargetInServiceWaiterOptions) {
			o.MinDelay, o.MaxDelay = time.Millisecond, 2*time.Millisecond
			o.Retryable = func(_ context.Context, _ *elb.DescribeTargetHealthInput, out *elb.DescribeTargetHealthOutput, err error) (bool, error) {
				return err == nil && out.TargetHealthDescriptions[0].TargetHealth.State != want, err
			}
		})
		if err := w.Wait(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)}, 5*time.Second); err != nil {
			t.Fatalf("waiting for %s (now %s): %v", want, state(), err)
		}
	}
	waitFor(elbtypes.TargetHealthStateEnumHealthy)
	healthy.Store(false)
	waitFor(elbtypes.TargetHealthStateEnumUnhealthy)
	out, err := c.DescribeTargetHealth(t.Context(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.TargetHealthDescriptions[0].TargetHealth.Reason; r != elbtypes.TargetHealthReasonEnumResponseCodeMismatch {
		t.Errorf("reason %s, want Target.ResponseCodeMismatch", r)
	}
	if hits.Load() < 4 {
		t.Errorf("%d health checks reached the server", hits.Load())
	}
}
