package elbv2

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// TargetState is one target's health as the load balancer sees it.
type TargetState struct {
	InstanceID string
	Port       int32
	// State is AWS's: initial, healthy, unhealthy, unused, draining or unavailable.
	State       string
	Reason      string // e.g. Target.FailedHealthChecks, Target.Timeout, Target.DeregistrationInProgress
	Description string
}

// Healthy reports a target the load balancer routes new requests to.
func (s TargetState) Healthy() bool { return s.State == string(types.TargetHealthStateEnumHealthy) }

func (lb *Balancer) targets(ids []string) []types.TargetDescription {
	out := make([]types.TargetDescription, 0, len(ids))
	for _, id := range ids {
		out = append(out, types.TargetDescription{Id: aws.String(id), Port: aws.Int32(lb.Port)})
	}
	return out
}

// Register adds instances to the target group and returns once every one is healthy (the
// TargetInService waiter, up to Timing.InService.Timeout): from then on the load balancer
// sends them traffic.
func (lb *Balancer) Register(ctx context.Context, instanceIDs []string) error {
	if len(instanceIDs) == 0 {
		return nil
	}
	_, err := lb.b.api.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(lb.TargetGroupARN), Targets: lb.targets(instanceIDs)})
	if err != nil {
		return fmt.Errorf("register %v with %s: %w", instanceIDs, lb.Name, err)
	}
	t, start := lb.b.timing.InService, time.Now()
	w := elb.NewTargetInServiceWaiter(lb.b.api, func(o *elb.TargetInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = t.Initial, max(t.Max, t.Initial)
	})
	in := &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(lb.TargetGroupARN), Targets: lb.targets(instanceIDs)}
	if err := w.Wait(ctx, in, t.Timeout); err != nil {
		err = waited(ctx, err, start, t.Timeout, fmt.Sprintf("%v to be healthy in %s", instanceIDs, lb.Name))
		if states, herr := lb.targetHealth(ctx, in); herr == nil {
			err = fmt.Errorf("%w (now: %s)", err, describe(states))
		}
		return err
	}
	lb.b.log.Info("targets in service", "targets", instanceIDs, "balancer", lb.Name, "after", time.Since(start))
	return nil
}

// Deregister removes instances from the target group and returns once they drained (the
// TargetDeregistered waiter, up to the deregistration delay plus Timing.Deregistered.Timeout):
// the load balancer sends them no new requests from the call on, and requests in flight had
// the delay to finish.
func (lb *Balancer) Deregister(ctx context.Context, instanceIDs []string) error {
	if len(instanceIDs) == 0 {
		return nil
	}
	_, err := lb.b.api.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(lb.TargetGroupARN), Targets: lb.targets(instanceIDs)})
	if err != nil {
		return fmt.Errorf("deregister %v from %s: %w", instanceIDs, lb.Name, err)
	}
	t, start := lb.b.timing.Deregistered, time.Now()
	bound := lb.DeregistrationDelay + t.Timeout
	w := elb.NewTargetDeregisteredWaiter(lb.b.api, func(o *elb.TargetDeregisteredWaiterOptions) {
		o.MinDelay, o.MaxDelay = t.Initial, max(t.Max, t.Initial)
	})
	in := &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(lb.TargetGroupARN), Targets: lb.targets(instanceIDs)}
	if err := w.Wait(ctx, in, bound); err != nil {
		return waited(ctx, err, start, bound, fmt.Sprintf("%v to drain from %s", instanceIDs, lb.Name))
	}
	lb.b.log.Info("targets drained", "targets", instanceIDs, "balancer", lb.Name, "after", time.Since(start))
	return nil
}

// TargetHealth is every registered target's state (draining ones included), by instance id.
func (lb *Balancer) TargetHealth(ctx context.Context) ([]TargetState, error) {
	return lb.targetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(lb.TargetGroupARN)})
}

func (lb *Balancer) targetHealth(ctx context.Context, in *elb.DescribeTargetHealthInput) ([]TargetState, error) {
	out, err := lb.b.api.DescribeTargetHealth(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("describe target health of %s: %w", lb.Name, err)
	}
	var states []TargetState
	for _, d := range out.TargetHealthDescriptions {
		s := TargetState{}
		if d.Target != nil {
			s.InstanceID, s.Port = aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)
		}
		if h := d.TargetHealth; h != nil {
			s.State, s.Reason, s.Description = string(h.State), string(h.Reason), aws.ToString(h.Description)
		}
		states = append(states, s)
	}
	slices.SortFunc(states, func(a, b TargetState) int {
		return cmp.Or(cmp.Compare(a.InstanceID, b.InstanceID), cmp.Compare(a.Port, b.Port))
	})
	return states, nil
}

// describe words target states for an error: "i-1 unhealthy (Target.Timeout), i-2 healthy".
func describe(states []TargetState) string {
	var parts []string
	for _, s := range states {
		p := s.InstanceID + " " + s.State
		if s.Reason != "" {
			p += " (" + s.Reason + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "no targets"
	}
	return strings.Join(parts, ", ")
}
