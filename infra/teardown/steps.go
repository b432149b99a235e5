package teardown

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/runtag"
)

// job carries one Remove through its steps.
type job struct {
	p     Plan
	sel   Selection
	dry   bool
	quiet bool // looking again: no "keeping" lines
	log   *slog.Logger
	res   *Result

	repos      map[string]*ecr.Repository // ephemeral repositories found, by name
	terminated []string                   // instances terminated, not yet confirmed gone
	removed    map[string]bool
}

func (p Plan) newJob(sel Selection, dry bool) *job {
	j := &job{p: p, sel: sel, dry: dry, log: orDiscard(p.Log), res: &Result{DryRun: dry},
		repos: map[string]*ecr.Repository{}, removed: map[string]bool{}}
	j.addLedger()
	return j
}

// steps is the one deletion order, for teardown and sweep alike. The load balancer's steps
// come first (its listener, then it, then its target group: each needs the one before it
// gone) and only when the plan has an ELBv2 client.
func (j *job) steps() []Step {
	steps := []Step{{Name: "find", Run: j.find}}
	if j.p.Balancers != nil {
		steps = append(steps,
			Step{Name: "delete listeners", Run: j.deleteListeners},
			Step{Name: "delete load balancers", Run: j.deleteLoadBalancers},
			Step{Name: "delete target groups", Run: j.deleteTargetGroups})
	}
	return append(steps, []Step{
		{Name: "terminate instances", Run: j.terminate},
		{Name: "wait until terminated", Run: j.waitTerminated},
		{Name: "delete security groups", Run: j.deleteGroups},
		{Name: "delete key pairs", Run: j.deleteKeyPairs},
		{Name: "delete detached volumes", Run: j.deleteVolumes},
		{Name: "delete ephemeral repositories", Run: j.deleteRepositories},
	}...)
}

// kinds is the deletion order of every kind a job knows.
var kinds = []string{elbv2.KindListener, elbv2.KindLoadBalancer, elbv2.KindTargetGroup,
	ec2.KindInstance, ec2.KindSecurityGroup, ec2.KindKeyPair, ec2.KindVolume, KindRepository}

// addLedger records what the run's LaunchHost calls and CreateFleetBalancer created: known
// before any call, so a teardown cut short still names it.
func (j *job) addLedger() {
	for _, r := range j.sel.Balancer.Ledger() {
		j.add(balancerResource(r))
	}
	for _, h := range j.sel.hosts() {
		j.addHost(h)
	}
	for _, r := range j.sel.Groups.Resources() {
		j.add(Resource{Kind: r.Kind, ID: r.ID, RunID: r.RunID})
	}
}

func (j *job) addHost(h *ec2.Host) {
	if h.InstanceID != "" {
		j.add(Resource{Kind: ec2.KindInstance, ID: h.InstanceID, RunID: h.RunID})
	}
	if h.SecurityGroupID != "" {
		j.add(Resource{Kind: ec2.KindSecurityGroup, ID: h.SecurityGroupID, RunID: h.RunID})
	}
	if h.KeyName != "" { // set only once ImportKeyPair succeeded: this run's key, not a namesake
		j.add(Resource{Kind: ec2.KindKeyPair, ID: h.KeyPairID, Name: h.KeyName, RunID: h.RunID})
	}
	for _, v := range h.VolumeIDs {
		j.add(Resource{Kind: ec2.KindVolume, ID: v, RunID: h.RunID, AttachedTo: h.InstanceID})
	}
}

// add merges r into Found, keeping deletion order: a resource already known (by id; a ledger
// key pair without an id by its name, which the run's tags then confirm) gets the newer facts.
func (j *job) add(r Resource) {
	for i, have := range j.res.Found {
		if have.Kind != r.Kind {
			continue
		}
		if key(have) == key(r) || (have.ID == "" && have.Name != "" && have.Name == r.Name) {
			r.RunID = cmp.Or(r.RunID, have.RunID)
			r.AttachedTo = cmp.Or(r.AttachedTo, have.AttachedTo)
			j.res.Found[i] = r
			return
		}
	}
	at := len(j.res.Found)
	for i, have := range j.res.Found {
		if slices.Index(kinds, have.Kind) > slices.Index(kinds, r.Kind) {
			at = i
			break
		}
	}
	j.res.Found = slices.Insert(j.res.Found, at, r)
}

func (j *job) of(kind string) []Resource {
	var out []Resource
	for _, r := range j.res.Found {
		if r.Kind == kind && !j.removed[key(r)] {
			out = append(out, r)
		}
	}
	return out
}

func (j *job) gone(r Resource) {
	if j.removed[key(r)] {
		return
	}
	j.removed[key(r)] = true
	j.res.Removed = append(j.res.Removed, r)
	j.log.Info("removed "+r.Label(), "run", r.RunID)
}

// wouldRemove logs r in a dry run and reports whether this is one.
func (j *job) wouldRemove(r Resource) bool {
	if j.dry {
		j.log.Info("would remove "+r.Label(), "run", r.RunID)
	}
	return j.dry
}

func (j *job) left() []Resource {
	var out []Resource
	for _, r := range j.res.Found {
		if !j.removed[key(r)] {
			out = append(out, r)
		}
	}
	return out
}

// find lists what the selector picks by tag and merges it with the ledger. A lost RunInstances
// answer is first resolved by replaying the call with its client token (never in a dry run: the
// replay may create the instance). A listing that fails leaves the others and the ledger.
func (j *job) find(ctx context.Context) error {
	var errs []error
	for _, h := range j.sel.hosts() {
		if h.Unresolved() && !j.dry {
			if err := j.p.Hosts.RecoverInstance(ctx, h); err != nil {
				errs = append(errs, err)
			}
			j.addHost(h)
		}
	}
	switch {
	case j.p.Balancers != nil:
		f, err := j.p.Balancers.Find(ctx, j.sel.Selector)
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range f.All() {
			j.add(balancerResource(r))
		}
	case len(j.sel.Balancer.Ledger()) > 0:
		errs = append(errs, fmt.Errorf("load balancer %s of run %s: the plan has no ELBv2 client to remove it", j.sel.Balancer.Name, j.sel.Balancer.RunID))
	}
	if j.p.Hosts != nil {
		f, err := j.p.Hosts.Find(ctx, j.sel.Selector)
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range f.All() {
			j.add(r)
		}
	}
	for _, repo := range j.p.Repositories {
		tags, created, exists, err := repo.Tags(ctx)
		switch {
		case err != nil:
			errs = append(errs, err)
			continue
		case !exists || !j.sel.Selector.Match(tags, created):
			continue
		case tags[runtag.KeyEphemeral] != "true":
			note := fmt.Sprintf("repository %s of run %s", repo.Name(), tags[runtag.KeyRunID])
			if !j.quiet {
				j.log.Info("keeping "+note+": it holds the inventory of verified images", "repository", repo.Name())
			}
			j.res.Kept = append(j.res.Kept, note)
			continue
		}
		j.repos[repo.Name()] = repo
		j.add(Resource{Kind: KindRepository, ID: repo.Name(), RunID: tags[runtag.KeyRunID]})
	}
	return errors.Join(errs...)
}

func (j *job) deleteListeners(ctx context.Context) error {
	return j.remove(j.of(elbv2.KindListener), func(r Resource) error { return j.p.Balancers.DeleteListener(ctx, r.ID) })
}

// deleteLoadBalancers deletes each load balancer and waits until it is gone; its listeners
// (one whose deletion failed included) go with it.
func (j *job) deleteLoadBalancers(ctx context.Context) error {
	return j.remove(j.of(elbv2.KindLoadBalancer), func(r Resource) error {
		if err := j.p.Balancers.DeleteLoadBalancer(ctx, r.ID); err != nil {
			return err
		}
		for _, l := range j.of(elbv2.KindListener) {
			if l.AttachedTo == r.ID {
				j.gone(l)
			}
		}
		return nil
	})
}

func (j *job) deleteTargetGroups(ctx context.Context) error {
	return j.remove(j.of(elbv2.KindTargetGroup), func(r Resource) error { return j.p.Balancers.DeleteTargetGroup(ctx, r.ID) })
}

// balancerResource is an ELBv2 resource as a teardown Resource, its ARN for the id.
func balancerResource(r elbv2.Resource) Resource {
	return Resource{Kind: r.Kind, ID: r.ARN, Name: r.Name, RunID: r.RunID, AttachedTo: r.AttachedTo, CreatedAt: r.CreatedAt}
}

func (j *job) terminate(ctx context.Context) error {
	var errs []error
	for _, r := range j.of(ec2.KindInstance) {
		if j.wouldRemove(r) {
			continue
		}
		if r.State == "terminated" {
			j.gone(r)
			continue
		}
		if err := j.p.Hosts.Terminate(ctx, r.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		j.terminated = append(j.terminated, r.ID)
	}
	return errors.Join(errs...)
}

func (j *job) waitTerminated(ctx context.Context) error {
	if len(j.terminated) == 0 {
		return nil
	}
	if err := j.p.Hosts.WaitTerminated(ctx, j.terminated); err != nil {
		return err
	}
	for _, r := range j.of(ec2.KindInstance) {
		if slices.Contains(j.terminated, r.ID) {
			r.State = "terminated"
			j.gone(r)
		}
	}
	// An attached volume goes with its instance (LaunchHost sets DeleteOnTermination).
	for _, v := range j.of(ec2.KindVolume) {
		if v.State != "available" && slices.Contains(j.terminated, v.AttachedTo) {
			j.gone(v)
		}
	}
	return nil
}

func (j *job) deleteGroups(ctx context.Context) error {
	return j.remove(j.of(ec2.KindSecurityGroup), func(r Resource) error { return j.p.Hosts.DeleteSecurityGroup(ctx, r.ID) })
}

func (j *job) deleteKeyPairs(ctx context.Context) error {
	return j.remove(j.of(ec2.KindKeyPair), func(r Resource) error { return j.p.Hosts.DeleteKeyPair(ctx, r.ID, r.Name) })
}

// deleteVolumes deletes detached volumes. An attached one went with its instance when that was
// confirmed terminated (waitTerminated); one still attached to a live instance stays.
func (j *job) deleteVolumes(ctx context.Context) error {
	var detached []Resource
	for _, r := range j.of(ec2.KindVolume) {
		if r.State == "available" || j.dry { // (a dry run lists the attached ones too: they go with their instance)
			detached = append(detached, r)
		}
	}
	return j.remove(detached, func(r Resource) error { return j.p.Hosts.DeleteVolume(ctx, r.ID) })
}

func (j *job) deleteRepositories(ctx context.Context) error {
	return j.remove(j.of(KindRepository), func(r Resource) error { return j.repos[r.ID].DeleteRepository(ctx) })
}

// remove deletes each resource with del (in a dry run, lists it instead); every one is tried
// and the errors are joined.
func (j *job) remove(rs []Resource, del func(Resource) error) error {
	var errs []error
	for _, r := range rs {
		if j.wouldRemove(r) {
			continue
		}
		if err := del(r); err != nil {
			errs = append(errs, err)
			continue
		}
		j.gone(r)
	}
	return errors.Join(errs...)
}
