package ec2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploydrill/deploydrill/infra/runtag"
)

// Resource is one EC2 resource this tool created.
type Resource struct {
	Kind      string // "instance", "security group", "key pair", "volume"
	ID        string // instance, group or volume id; the key pair's name
	State     string // instances and volumes
	RunID     string
	CreatedAt time.Time
}

func (r Resource) String() string {
	s := r.Kind + " " + r.ID
	if r.State != "" {
		s += " (" + r.State + ")"
	}
	return s + " of run " + r.RunID
}

// Found is what Find found, by kind.
type Found struct {
	Instances, SecurityGroups, KeyPairs, Volumes []Resource
}

// All lists everything in deletion order.
func (f Found) All() []Resource {
	return slices.Concat(f.Instances, f.SecurityGroups, f.KeyPairs, f.Volumes)
}

// Find lists the live resources this tool tagged that the selector picks. Terminated
// instances are not live (AWS shows them for an hour); the default VPC's own group is not ours.
func (h *Hosts) Find(ctx context.Context, sel runtag.Selector) (Found, error) {
	filters := []types.Filter{{Name: aws.String("tag:" + runtag.KeyCreatedBy), Values: []string{runtag.CreatedBy}}}
	if sel.RunID != "" {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + runtag.KeyRunID), Values: []string{sel.RunID}})
	}
	var f Found
	var errs []error
	add := func(list *[]Resource, kind, id, state string, tags []types.Tag, created time.Time) {
		m := tagMap(tags)
		if sel.Match(m, created) {
			*list = append(*list, Resource{Kind: kind, ID: id, State: state, RunID: m[runtag.KeyRunID], CreatedAt: created})
		}
	}

	live := append(slices.Clone(filters), types.Filter{Name: aws.String("instance-state-name"),
		Values: []string{"pending", "running", "shutting-down", "stopping", "stopped"}})
	instances := ec2.NewDescribeInstancesPaginator(h.api, &ec2.DescribeInstancesInput{Filters: live, MaxResults: aws.Int32(1000)})
	for instances.HasMorePages() {
		page, err := instances.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list instances: %w", err))
			break
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				add(&f.Instances, "instance", aws.ToString(in.InstanceId), string(stateName(in.State)), in.Tags, aws.ToTime(in.LaunchTime))
			}
		}
	}

	groups := ec2.NewDescribeSecurityGroupsPaginator(h.api, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	for groups.HasMorePages() {
		page, err := groups.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list security groups: %w", err))
			break
		}
		for _, g := range page.SecurityGroups {
			add(&f.SecurityGroups, "security group", aws.ToString(g.GroupId), "", g.Tags, time.Time{})
		}
	}

	keys, err := h.api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: filters})
	if err != nil {
		errs = append(errs, fmt.Errorf("list key pairs: %w", err))
	} else {
		for _, k := range keys.KeyPairs {
			add(&f.KeyPairs, "key pair", aws.ToString(k.KeyName), "", k.Tags, aws.ToTime(k.CreateTime))
		}
	}

	volumes := ec2.NewDescribeVolumesPaginator(h.api, &ec2.DescribeVolumesInput{Filters: filters})
	for volumes.HasMorePages() {
		page, err := volumes.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list volumes: %w", err))
			break
		}
		for _, v := range page.Volumes {
			add(&f.Volumes, "volume", aws.ToString(v.VolumeId), string(v.State), v.Tags, aws.ToTime(v.CreateTime))
		}
	}
	return f, errors.Join(errs...)
}

func stateName(s *types.InstanceState) types.InstanceStateName {
	if s == nil {
		return ""
	}
	return s.Name
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
