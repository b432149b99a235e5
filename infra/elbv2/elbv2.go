// Package elbv2 puts a fleet of the drill's hosts behind an Application Load Balancer and
// removes it again: an internet-facing ALB in two or more subnets, a target group with an HTTP
// health check, a listener on :80 forwarding to it, all tagged with the run's tags at creation;
// registering and deregistering (draining) targets, their health as the load balancer sees
// it, and the finds and deletes teardown and sweep use. Every wait is one of the SDK's ELBv2
// waiters (LoadBalancerAvailable, TargetInService, TargetDeregistered, LoadBalancersDeleted)
// with an explicit maximum, or infra/wait's poll.
//
// The security groups (the load balancer's, and the hosts' admitting it) are infra/ec2's: a
// FleetSpec takes their ids.
package elbv2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"

	"github.com/deploydrill/deploydrill/infra/wait"
)

// api is the part of *elasticloadbalancingv2.Client this package uses.
type api interface {
	CreateLoadBalancer(ctx context.Context, in *elb.CreateLoadBalancerInput, optFns ...func(*elb.Options)) (*elb.CreateLoadBalancerOutput, error)
	DescribeLoadBalancers(ctx context.Context, in *elb.DescribeLoadBalancersInput, optFns ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error)
	DeleteLoadBalancer(ctx context.Context, in *elb.DeleteLoadBalancerInput, optFns ...func(*elb.Options)) (*elb.DeleteLoadBalancerOutput, error)
	CreateTargetGroup(ctx context.Context, in *elb.CreateTargetGroupInput, optFns ...func(*elb.Options)) (*elb.CreateTargetGroupOutput, error)
	ModifyTargetGroupAttributes(ctx context.Context, in *elb.ModifyTargetGroupAttributesInput, optFns ...func(*elb.Options)) (*elb.ModifyTargetGroupAttributesOutput, error)
	DescribeTargetGroups(ctx context.Context, in *elb.DescribeTargetGroupsInput, optFns ...func(*elb.Options)) (*elb.DescribeTargetGroupsOutput, error)
	DeleteTargetGroup(ctx context.Context, in *elb.DeleteTargetGroupInput, optFns ...func(*elb.Options)) (*elb.DeleteTargetGroupOutput, error)
	CreateListener(ctx context.Context, in *elb.CreateListenerInput, optFns ...func(*elb.Options)) (*elb.CreateListenerOutput, error)
	DescribeListeners(ctx context.Context, in *elb.DescribeListenersInput, optFns ...func(*elb.Options)) (*elb.DescribeListenersOutput, error)
	DeleteListener(ctx context.Context, in *elb.DeleteListenerInput, optFns ...func(*elb.Options)) (*elb.DeleteListenerOutput, error)
	RegisterTargets(ctx context.Context, in *elb.RegisterTargetsInput, optFns ...func(*elb.Options)) (*elb.RegisterTargetsOutput, error)
	DeregisterTargets(ctx context.Context, in *elb.DeregisterTargetsInput, optFns ...func(*elb.Options)) (*elb.DeregisterTargetsOutput, error)
	DescribeTargetHealth(ctx context.Context, in *elb.DescribeTargetHealthInput, optFns ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error)
	DescribeTags(ctx context.Context, in *elb.DescribeTagsInput, optFns ...func(*elb.Options)) (*elb.DescribeTagsOutput, error)
}

var _ api = (*elb.Client)(nil)

// Timing bounds every wait. Tests shrink it; DefaultTiming suits AWS.
type Timing struct {
	Available wait.Poll // the LoadBalancerAvailable waiter: delays and maximum wait
	InService wait.Poll // the TargetInService waiter, after RegisterTargets
	// Deregistered is the TargetDeregistered waiter after DeregisterTargets; its Timeout is
	// the margin beyond the balancer's deregistration delay (the draining itself).
	Deregistered wait.Poll
	Deleted      wait.Poll // the LoadBalancersDeleted waiter, after DeleteLoadBalancer
	// GroupDelete bounds DeleteTargetGroup while AWS still says ResourceInUse: a target group
	// stays in use for a while after its load balancer was deleted.
	GroupDelete wait.Poll
}

// DefaultTiming fits AWS: an ALB provisions in one to five minutes; a target passes its
// health checks within (healthy threshold × interval) once the load balancer is active.
func DefaultTiming() Timing {
	return Timing{
		Available:    wait.Poll{Initial: 10 * time.Second, Max: 30 * time.Second, Timeout: 10 * time.Minute},
		InService:    wait.Poll{Initial: 5 * time.Second, Max: 15 * time.Second, Timeout: 5 * time.Minute},
		Deregistered: wait.Poll{Initial: 5 * time.Second, Max: 15 * time.Second, Timeout: 2 * time.Minute},
		Deleted:      wait.Poll{Initial: 5 * time.Second, Max: 15 * time.Second, Timeout: 5 * time.Minute},
		GroupDelete:  wait.Poll{Initial: 2 * time.Second, Max: 15 * time.Second, Timeout: 5 * time.Minute},
	}
}

// Options configure Balancers. Zero values take the defaults noted on each field.
type Options struct {
	Timing Timing // zero: DefaultTiming()
	// Log reports progress; nil discards it.
	Log *slog.Logger
}

// Balancers creates and removes the drill's load balancers.
type Balancers struct {
	api    api
	timing Timing
	log    *slog.Logger
}

// New wraps an ELBv2 client; *elasticloadbalancingv2.Client fits.
func New(c api, o Options) *Balancers {
	b := &Balancers{api: c, timing: o.Timing, log: o.Log}
	if b.timing == (Timing{}) {
		b.timing = DefaultTiming()
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b
}

// NewFromConfig builds the client from an SDK configuration.
func NewFromConfig(cfg aws.Config, o Options) *Balancers { return New(elb.NewFromConfig(cfg), o) }

// errorCode is the AWS error code inside err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// waited words the end of an SDK waiter: interrupted (the caller cancelled), timed out (its
// maximum, or the caller's deadline, passed: the error wraps context.DeadlineExceeded), or
// failed (a state the waiter gives up on, an API error).
func waited(ctx context.Context, err error, start time.Time, bound time.Duration, what string) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("interrupted after %s waiting for %s: %w", time.Since(start).Round(time.Millisecond), what, err)
	case ctx.Err() != nil:
		return fmt.Errorf("timed out after %s waiting for %s: %w", time.Since(start).Round(time.Millisecond), what, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out after %s waiting for %s: %w", bound, what, err)
	case strings.Contains(err.Error(), "exceeded max wait time"): // the SDK waiter's own bound
		return fmt.Errorf("timed out after %s waiting for %s: %w: %w", bound, what, context.DeadlineExceeded, err)
	}
	return fmt.Errorf("wait for %s: %w", what, err)
}
