package awsdouble_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

func group(t *testing.T, c *ec2.Client, name string) string {
	t.Helper()
	out, err := c.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name), VpcId: aws.String(defaultVPC)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.GroupId)
}

func fromGroup(port int32, source string) types.IpPermission {
	return types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(source), Description: aws.String("from the load balancer")}}}
}

func TestGroupPairRules(t *testing.T) {
	ctx := t.Context()
	d := start(t, awsdouble.Options{})
	c := ec2.NewFromConfig(d.Config())
	lb, hosts := group(t, c, "lb"), group(t, c, "hosts")
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(hosts),
		IpPermissions: []types.IpPermission{fromGroup(80, lb)}}); err != nil {
		t.Fatal(err)
	}

	t.Run("the rule names its source group in both views", func(t *testing.T) {
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{hosts}})
		if err != nil {
			t.Fatal(err)
		}
		perms := out.SecurityGroups[0].IpPermissions
		if len(perms) != 1 || len(perms[0].UserIdGroupPairs) != 1 || aws.ToString(perms[0].UserIdGroupPairs[0].GroupId) != lb ||
			aws.ToString(perms[0].UserIdGroupPairs[0].UserId) != "123456789012" || len(perms[0].IpRanges) != 0 {
			t.Errorf("DescribeSecurityGroups: %+v, want one rule from %s", perms, lb)
		}
		for _, g := range d.SecurityGroups() {
			if g.ID == hosts && (len(g.Ingress) != 1 || len(g.Ingress[0].Groups) != 1 || g.Ingress[0].Groups[0] != lb || len(g.Ingress[0].CIDRs) != 0) {
				t.Errorf("SecurityGroups: %+v, want one rule from %s", g.Ingress, lb)
			}
		}
	})

	tests := []struct {
		name string
		perm types.IpPermission
		want string
	}{
		{"the same rule again is a duplicate", fromGroup(80, lb), "InvalidPermission.Duplicate"},
		{"a source group that does not exist", fromGroup(80, "sg-0000000000000dead"), "InvalidGroup.NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(hosts), IpPermissions: []types.IpPermission{tt.perm}})
			if errorCode(err) != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}

	t.Run("a source group in another vpc", func(t *testing.T) {
		other, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("elsewhere"), Description: aws.String("x"), VpcId: aws.String("vpc-0000000000000abc0")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(hosts), IpPermissions: []types.IpPermission{fromGroup(81, aws.ToString(other.GroupId))}})
		if errorCode(err) != "InvalidGroup.NotFound" || !strings.Contains(err.Error(), "different networks") {
			t.Errorf("got %v, want InvalidGroup.NotFound for different networks", err)
		}
	})

	t.Run("a referenced group is deleted only after the group referring to it", func(t *testing.T) {
		_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(lb)})
		if errorCode(err) != "DependencyViolation" || !strings.Contains(err.Error(), hosts) {
			t.Fatalf("delete the referenced group: %v, want DependencyViolation naming %s", err, hosts)
		}
		for _, id := range []string{hosts, lb} {
			if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)}); err != nil {
				t.Fatalf("delete %s: %v", id, err)
			}
		}
	})
}

func TestDefaultSubnetsCanBeAddedAndRemoved(t *testing.T) {
	d := start(t, awsdouble.Options{})
	c := ec2.NewFromConfig(d.Config())
	id, err := d.AddDefaultSubnet("c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddDefaultSubnet("eu-west-1c"); err == nil {
		t.Error("a second default subnet in one zone was accepted")
	}
	if err := d.DeleteSubnet("subnet-000000000000def01"); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{defaultVPC}}, {Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range out.Subnets {
		got = append(got, aws.ToString(s.SubnetId)+" "+aws.ToString(s.AvailabilityZone))
	}
	if want := "subnet-000000000000def00 eu-west-1a," + id + " eu-west-1c"; strings.Join(got, ",") != want {
		t.Errorf("default subnets %v, want %s", got, want)
	}
}

// TestADataPlaneCanOwnTargetHealth: with CheckTarget answering ErrCheckSkipped, the double's
// checks decide nothing and SetTargetHealth's verdicts are what DescribeTargetHealth shows.
func TestADataPlaneCanOwnTargetHealth(t *testing.T) {
	ctx := t.Context()
	d := awsdouble.New(awsdouble.Options{ELBv2: quickELB()})
	t.Cleanup(d.Close)
	checks := make(chan struct{}, 1000)
	d.CheckTarget = func(context.Context, awsdouble.TargetCheck) error {
		checks <- struct{}{}
		return awsdouble.ErrCheckSkipped
	}
	c, e := elb.NewFromConfig(d.Config()), ec2.NewFromConfig(d.Config())
	_, tgARN, _ := balancer(t, c, "owned", 80)
	id := runningInstance(t, e)
	if _, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgARN), Targets: []elbtypes.TargetDescription{{Id: aws.String(id)}}}); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		t.Helper()
		out, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
		if err != nil {
			t.Fatal(err)
		}
		h := out.TargetHealthDescriptions[0].TargetHealth
		return string(h.State) + " " + string(h.Reason)
	}
	for range 10 { // ten checks (interval 5 ms), each of which would have made it healthy
		select {
		case <-checks:
		case <-time.After(5 * time.Second):
			t.Fatal("no health check ran")
		}
	}
	if got := state(); got != "initial Elb.InitialHealthChecking" {
		t.Fatalf("after skipped checks: %q, want initial", got)
	}
	verdict := awsdouble.TargetVerdict{TargetGroupARN: tgARN, InstanceID: id, Port: 80, State: "unhealthy", Reason: "Target.Timeout", Description: "Request timed out"}
	if !d.SetTargetHealth(verdict) || d.SetTargetHealth(verdict) {
		t.Error("SetTargetHealth: want a change the first time and none the second")
	}
	if got := state(); got != "unhealthy Target.Timeout" {
		t.Errorf("after the verdict: %q", got)
	}
	verdict.State = "healthy"
	d.SetTargetHealth(verdict)
	if got := state(); got != "healthy " {
		t.Errorf("after the second verdict: %q", got)
	}
	if _, err := c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgARN), Targets: []elbtypes.TargetDescription{{Id: aws.String(id)}}}); err != nil {
		t.Fatal(err)
	}
	verdict.State = "unhealthy"
	if d.SetTargetHealth(verdict) {
		t.Error("a verdict on a draining target was applied")
	}
}
