package awsdouble

import (
	"slices"
	"strings"
)

// Security group rules whose source is another security group (a "group pair",
// IpPermissions.N.Groups.M in the query API, UserIdGroupPairs in the SDK): the rule admits
// whatever is a member of the source group (an instance launched into it, a load balancer
// created with it). As on AWS, the source group must exist in the same VPC, and a group that
// another group's rule names cannot be deleted (DependencyViolation) until that rule or group
// is gone.

type xGroupPair struct {
	UserID  string `xml:"userId"`
	GroupID string `xml:"groupId"`
}

func (d *Double) xGroupPairs(ids []string) []xGroupPair {
	var out []xGroupPair
	for _, id := range ids {
		out = append(out, xGroupPair{d.opts.AccountID, id})
	}
	return out
}

// sourceGroups reads one permission's Groups.N.GroupId (or GroupName, looked up in the
// target group's VPC), checking each names a group in that VPC. Callers hold d.mu.
func (d *Double) sourceGroups(p form, target *group) ([]string, *apiError) {
	var out []string
	for _, pair := range p.items("Groups") {
		id, name := pair.get("GroupId"), pair.get("GroupName")
		if user := pair.get("UserId"); user != "" && user != d.opts.AccountID {
			return nil, errorf("InvalidGroup.NotFound", "this double models groups of its own account %s only, not %s", d.opts.AccountID, user)
		}
		var src *group
		switch {
		case id != "":
			src = d.groups[id]
		case name != "":
			for _, g := range sortedValues(d.groups, func(g *group) string { return g.id }) {
				if g.name == name && g.vpcID == target.vpcID {
					src = g
				}
			}
		default:
			return nil, errorf("MissingParameter", "a source group needs a GroupId or a GroupName")
		}
		if src == nil {
			return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", id+name)
		}
		if src.vpcID != target.vpcID {
			return nil, errorf("InvalidGroup.NotFound", "You have specified two resources that belong to different networks: %s and %s", src.id, target.id)
		}
		out = append(out, src.id)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// referencedBy refuses to delete a group another group's rule names. Callers hold d.mu.
func (d *Double) referencedBy(g *group) *apiError {
	var by []string
	for _, other := range sortedValues(d.groups, func(g *group) string { return g.id }) {
		if other.id == g.id {
			continue
		}
		for _, p := range other.ingress {
			if slices.Contains(p.Groups, g.id) {
				by = append(by, other.id)
				break
			}
		}
	}
	if len(by) > 0 {
		return errorf("DependencyViolation", "resource %s has a dependent object (referenced by %s)", g.id, strings.Join(by, ", "))
	}
	return nil
}
