package ec2

import (
	"cmp"
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

// Resource kinds, in deletion order.
const (
	KindInstance      = "instance"
	KindSecurityGroup = "security group"
	KindKeyPair       = "key pair"
	KindVolume        = "volume"
)

// Resource is one EC2 resource this tool created.
type Resource struct {
	Kind       string // KindInstance, KindSecurityGroup, KindKeyPair, KindVolume
	ID         string // instance, group, key pair or volume id
	Name       string // key pairs: the name, which is what people know them by
	State      string // instances and volumes; "" when not known
	RunID      string
	AttachedTo string // volumes: the instance they are attached to
	CreatedAt  time.Time
}

// Label names the resource for people: "key pair deploydrill-r1", "instance i-0abc".
func (r Resource) Label() string { return r.Kind + " " + cmp.Or(r.Name, r.ID) }

// String is the label with the state and run: "instance i-0abc (running) of run r1".
func (r Resource) String() string {
	s := r.Label()
	if r.State != "" {
		s += " (" + r.State + ")"
	}
	if r.RunID != "" {
		s += " of run " + r.RunID
	}
	return s
}

// Found is what Find found, by kind.
type Found struct {
	Instances, SecurityGroups, KeyPairs, Volumes []Resource
}

// All lists everything in deletion order.
func (f Found) All() []Resource {
	return slices.Concat(f.Instances, f.SecurityGroups, f.KeyPairs, f.Volumes)
}

// Find lists the live resources this tool tagged that the selector picks: every listing
// filters on the tool's created-by tag (and the run's id when the selector names one), so an
// untagged resource, whatever its name, is never found. Terminated instances are not live (AWS
// shows them for an hour). A listing that fails is reported and the others still run.
func (h *Hosts) Find(ctx context.Context, sel runtag.Selector) (Found, error) {
	filters := []types.Filter{{Name: aws.String("tag:" + runtag.KeyCreatedBy), Values: []string{runtag.CreatedBy}}}
	if sel.RunID != "" {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + runtag.KeyRunID), Values: []string{sel.RunID}})
	}
	var f Found
	var errs []error
	add := func(list *[]Resource, r Resource, tags []types.Tag) {
		m := tagMap(tags)
		if sel.Match(m, r.CreatedAt) {
			r.RunID = m[runtag.KeyRunID]
			*list = append(*list, r)
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
				add(&f.Instances, Resource{Kind: KindInstance, ID: aws.ToString(in.InstanceId), State: string(stateName(in.State)),
					CreatedAt: aws.ToTime(in.LaunchTime)}, in.Tags)
			}
		}
	}

	groups := ec2.NewDescribeSecurityGroupsPaginator(h.api, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	refers := map[string][]string{} // group id -> the groups its rules name as sources
	for groups.HasMorePages() {
		page, err := groups.NextPage(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list security groups: %w", err))
			break
		}
		for _, g := range page.SecurityGroups {
			add(&f.SecurityGroups, Resource{Kind: KindSecurityGroup, ID: aws.ToString(g.GroupId)}, g.Tags)
			for _, p := range g.IpPermissions {
				for _, pair := range p.UserIdGroupPairs {
					refers[aws.ToString(g.GroupId)] = append(refers[aws.ToString(g.GroupId)], aws.ToString(pair.GroupId))
				}
			}
		}
	}
	f.SecurityGroups = referrersFirst(f.SecurityGroups, refers)

	keys, err := h.api.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: filters})
	if err != nil {
		errs = append(errs, fmt.Errorf("list key pairs: %w", err))
	} else {
		for _, k := range keys.KeyPairs {
			add(&f.KeyPairs, Resource{Kind: KindKeyPair, ID: aws.ToString(k.KeyPairId), Name: aws.ToString(k.KeyName),
				CreatedAt: aws.ToTime(k.CreateTime)}, k.Tags)
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
			r := Resource{Kind: KindVolume, ID: aws.ToString(v.VolumeId), State: string(v.State), CreatedAt: aws.ToTime(v.CreateTime)}
			for _, a := range v.Attachments {
				r.AttachedTo = cmp.Or(r.AttachedTo, aws.ToString(a.InstanceId))
			}
			add(&f.Volumes, r, v.Tags)
		}
	}
	return f, errors.Join(errs...)
}

// referrersFirst orders groups so that one whose rules name another comes before it (a fleet's
// hosts group before the load balancer's): AWS refuses to delete a group that a rule of another
// still refers to. Otherwise the listing's order stays.
func referrersFirst(groups []Resource, refers map[string][]string) []Resource {
	out := make([]Resource, 0, len(groups))
	placed := map[string]bool{}
	for len(out) < len(groups) {
		progress := false
		for _, g := range groups {
			if placed[g.ID] {
				continue
			}
			referred := false // by a group not yet placed
			for _, other := range groups {
				if other.ID != g.ID && !placed[other.ID] && slices.Contains(refers[other.ID], g.ID) {
					referred = true
					break
				}
			}
			if !referred {
				out, placed[g.ID], progress = append(out, g), true, true
			}
		}
		if !progress { // a cycle: AWS allows one; keep the rest as listed
			for _, g := range groups {
				if !placed[g.ID] {
					out, placed[g.ID] = append(out, g), true
				}
			}
		}
	}
	return out
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
