package elbv2

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// The deletes below are idempotent: a resource that is already gone counts as deleted. They
// go by ARN, which teardown has from the ledger (a Balancer) or from Find (the tags).

// DeleteListener deletes a listener.
func (b *Balancers) DeleteListener(ctx context.Context, arn string) error {
	_, err := b.api.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(arn)})
	if err != nil && errorCode(err) != "ListenerNotFound" {
		return fmt.Errorf("delete listener %s: %w", arn, err)
	}
	return nil
}

// DeleteLoadBalancer deletes a load balancer (and with it any listener left) and waits with
// the LoadBalancersDeleted waiter, up to Timing.Deleted.Timeout, until AWS no longer shows it.
func (b *Balancers) DeleteLoadBalancer(ctx context.Context, arn string) error {
	_, err := b.api.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(arn)})
	if err != nil && errorCode(err) != "LoadBalancerNotFound" {
		return fmt.Errorf("delete load balancer %s: %w", arn, err)
	}
	t, start := b.timing.Deleted, time.Now()
	w := elb.NewLoadBalancersDeletedWaiter(b.api, func(o *elb.LoadBalancersDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = t.Initial, max(t.Max, t.Initial)
	})
	if err := w.Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{arn}}, t.Timeout); err != nil {
		return fmt.Errorf("delete load balancer %s: %w", arn, waited(ctx, err, start, t.Timeout, "it to be gone"))
	}
	return nil
}

// DeleteTargetGroup deletes a target group, retrying ResourceInUse (AWS releases a group
// late after its load balancer was deleted) with backoff until Timing.GroupDelete runs out.
func (b *Balancers) DeleteTargetGroup(ctx context.Context, arn string) error {
	err := b.timing.GroupDelete.Run(ctx, "target group "+arn+" to be released", func(ctx context.Context) (bool, error) {
		_, err := b.api.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
		switch errorCode(err) {
		case "ResourceInUse":
			return false, err
		case "TargetGroupNotFound":
			return true, nil
		}
		return true, err
	})
	if err != nil {
		return fmt.Errorf("delete target group %s: %w", arn, err)
	}
	return nil
}
