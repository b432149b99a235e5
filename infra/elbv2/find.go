package elbv2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/deploydrill/deploydrill/infra/runtag"
)

// Resource kinds, in deletion order.
const (
	KindListener     = "listener"
	KindLoadBalancer = "load balancer"
	KindTargetGroup  = "target group"
)

// Resource is one ELBv2 resource this tool created.
type Resource struct {
	Kind       string // KindListener, KindLoadBalancer, KindTargetGroup
	ARN        string
	Name       string // the load balancer's or target group's name; a listener's "NAME:PORT"
	RunID      string
	AttachedTo string // listeners: their load balancer's ARN (deleting it deletes them)
	CreatedAt  time.Time
}

// Found is what Find found, by kind.
type Found struct {
	Listeners, LoadBalancers, TargetGroups []Resource
}

// All lists everything in deletion order.
func (f Found) All() []Resource { return slices.Concat(f.Listeners, f.LoadBalancers, f.TargetGroups) }

// Ledger lists what a Balancer says was created, in deletion order: known before any listing.
func (lb *Balancer) Ledger() []Resource {
	if lb == nil {
		return nil
	}
	var out []Resource
	if lb.ListenerARN != "" {
		out = append(out, Resource{Kind: KindListener, ARN: lb.ListenerARN, Name: lb.Name + ":" + strconv.Itoa(int(lb.ListenerPort)),
			RunID: lb.RunID, AttachedTo: lb.LoadBalancerARN})
	}
	if lb.LoadBalancerARN != "" {
		out = append(out, Resource{Kind: KindLoadBalancer, ARN: lb.LoadBalancerARN, Name: lb.Name, RunID: lb.RunID})
	}
	if lb.TargetGroupARN != "" {
		out = append(out, Resource{Kind: KindTargetGroup, ARN: lb.TargetGroupARN, Name: lb.Name, RunID: lb.RunID})
	}
	return out
}

// Find lists the load balancers, their listeners and the target groups this tool tagged that
// the selector picks. ELBv2 listings cannot filter by tag: every resource's tags are read
// (DescribeTags, 20 at a time), and an untagged one, whatever its name, is never found. A
// listing that fails is reported and the others still run.
func (b *Balancers) Find(ctx context.Context, sel runtag.Selector) (Found, error) {
	var f Found
	var errs []error

	var lbs []Resource
	lbPages := elb.NewDescribeLoadBalancersPaginator(b.api, &elb.DescribeLoadBalancersInput{})
	for lbPages.HasMorePages() {
		page, err := lbPages.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list load balancers: %w", err))
			break
		}
		for _, lb := range page.LoadBalancers {
			lbs = append(lbs, Resource{Kind: KindLoadBalancer, ARN: aws.ToString(lb.LoadBalancerArn), Name: aws.ToString(lb.LoadBalancerName),
				CreatedAt: aws.ToTime(lb.CreatedTime)})
		}
	}
	f.LoadBalancers, errs = b.selectTagged(ctx, sel, lbs, "load balancers", errs)

	var listeners []Resource
	for _, lb := range f.LoadBalancers {
		pages := elb.NewDescribeListenersPaginator(b.api, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lb.ARN)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if errorCode(err) == "LoadBalancerNotFound" { // gone since the listing: so are its listeners
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("list listeners of %s: %w", lb.Name, err))
				break
			}
			for _, l := range page.Listeners {
				listeners = append(listeners, Resource{Kind: KindListener, ARN: aws.ToString(l.ListenerArn),
					Name: lb.Name + ":" + strconv.Itoa(int(aws.ToInt32(l.Port))), AttachedTo: lb.ARN})
			}
		}
	}
	f.Listeners, errs = b.selectTagged(ctx, sel, listeners, "listeners", errs)

	var groups []Resource
	tgPages := elb.NewDescribeTargetGroupsPaginator(b.api, &elb.DescribeTargetGroupsInput{})
	for tgPages.HasMorePages() {
		page, err := tgPages.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list target groups: %w", err))
			break
		}
		for _, g := range page.TargetGroups {
			groups = append(groups, Resource{Kind: KindTargetGroup, ARN: aws.ToString(g.TargetGroupArn), Name: aws.ToString(g.TargetGroupName)})
		}
	}
	f.TargetGroups, errs = b.selectTagged(ctx, sel, groups, "target groups", errs)
	return f, errors.Join(errs...)
}

// selectTagged keeps the resources whose tags the selector picks, setting their run id. A
// resource gone since its listing (NotFound) is dropped.
func (b *Balancers) selectTagged(ctx context.Context, sel runtag.Selector, rs []Resource, what string, errs []error) ([]Resource, []error) {
	var out []Resource
	for chunk := range slices.Chunk(rs, 20) {
		tags, err := b.tags(ctx, chunk)
		if err != nil {
			return out, append(errs, fmt.Errorf("read tags of %s: %w", what, err))
		}
		for _, r := range chunk {
			if t, ok := tags[r.ARN]; ok && sel.Match(t, r.CreatedAt) {
				r.RunID = t[runtag.KeyRunID]
				out = append(out, r)
			}
		}
	}
	return out, errs
}

// tags reads the tags of up to 20 resources by ARN. One that is gone makes DescribeTags fail
// as a whole: then each is asked alone, and the gone ones are left out.
func (b *Balancers) tags(ctx context.Context, rs []Resource) (map[string]map[string]string, error) {
	arns := make([]string, 0, len(rs))
	for _, r := range rs {
		arns = append(arns, r.ARN)
	}
	out := map[string]map[string]string{}
	read := func(arns []string) error {
		res, err := b.api.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: arns})
		if err != nil {
			return err
		}
		for _, d := range res.TagDescriptions {
			m := map[string]string{}
			for _, t := range d.Tags {
				m[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			out[aws.ToString(d.ResourceArn)] = m
		}
		return nil
	}
	err := read(arns)
	if !notFound(err) || len(arns) == 1 {
		if notFound(err) {
			return out, nil
		}
		return out, err
	}
	for _, arn := range arns {
		if err := read([]string{arn}); err != nil && !notFound(err) {
			return out, err
		}
	}
	return out, nil
}

func notFound(err error) bool {
	switch errorCode(err) {
	case "LoadBalancerNotFound", "TargetGroupNotFound", "ListenerNotFound":
		return true
	}
	return false
}
