package aws

import (
	"context"
	"fmt"
	"slices"

	"github.com/deploydrill/deploydrill/ci/environment"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/internal/retention"
)

// Teardown clears a fault still injected (step "clear fault", while SSH is up), closes SSH,
// runs the shared deletion steps for this run (what its ledger says it created and what carries
// its tags; infra/teardown), then applies retention with keep to the repository, unless the
// repository is the ephemeral one this run created, which the steps delete. It is idempotent:
// a second call after a clean one does nothing.
//
// The Teardown it returns says what each step did and, when anything may remain, names each
// resource (from the ledger and from what the steps found, also when ctx ended part way: no
// further call is made then) and the sweep command that removes them.
func (t *Target) Teardown(ctx context.Context, keep retention.Policy) (environment.Teardown, error) {
	t.mu.Lock()
	if t.torn {
		t.mu.Unlock()
		return environment.Teardown{}, nil
	}
	t.mu.Unlock()
	log := t.cfg.Log.With("phase", "teardown")
	// A fault the drill did not clear (interrupted, or its Clear failed) is cleared while SSH is
	// still up, before the host goes: a host that outlives a failed termination is left clean.
	var cleared []teardown.StepResult
	var injected nodes
	for _, n := range t.nodes {
		n.mu.Lock()
		if n.fault != nil && n.runner != nil {
			injected = append(injected, n)
		}
		n.mu.Unlock()
	}
	if len(injected) > 0 {
		clear := hostSet{t: t, nodes: injected}.Clear
		cleared = teardown.RunSteps(ctx, log, []teardown.Step{{Name: "clear fault", Run: clear}})
	}
	var ledgers []*ec2.Host
	for _, n := range t.nodes {
		n.mu.Lock()
		if n.runner != nil {
			n.runner.Close()
			n.runner = nil
		}
		ledgers = append(ledgers, n.host)
		n.mu.Unlock()
	}
	t.mu.Lock()
	ensured, groups, lb := t.ensured, t.groups, t.lb
	t.mu.Unlock()
	host := ledgers[0]
	sel := teardown.ForRun(t.cfg.Run.ID, host)
	sel.Fleet, sel.Groups, sel.Balancer = ledgers[1:], groups, lb
	plan := teardown.Plan{Hosts: t.hosts, Repositories: []*ecr.Repository{t.repo}, Log: log}
	if t.isFleet() {
		plan.Balancers = t.balancers
	}
	res := plan.Remove(ctx, sel, false)

	// The run's own ephemeral repository is deleted by the steps, not retained.
	ephemeral := (ensured.Created && ensured.Ephemeral) || slices.ContainsFunc(res.Found, isRepository)
	var td environment.Teardown
	retain := teardown.Step{Name: "ecr retention", Run: func(ctx context.Context) error {
		if ephemeral {
			return nil
		}
		outcome, err := t.repo.Retain(ctx, keep)
		td.Retention = outcome.String() // the lifecycle logs it, for every target alike
		return err
	}}
	steps := append(append(cleared, res.Steps...), teardown.RunSteps(ctx, log, []teardown.Step{retain})...)
	for _, s := range steps {
		step := environment.Step{Name: s.Name, Took: s.Took}
		if s.Err != nil {
			step.Error = s.Err.Error()
		}
		td.Steps = append(td.Steps, step)
	}

	for _, r := range res.Remaining {
		td.Left = append(td.Left, r.String())
	}
	if res.Steps[0].Err != nil {
		td.Left = append(td.Left, fmt.Sprintf("anything else tagged %s=%s (finding the run's resources failed)", runtag.KeyRunID, t.cfg.Run.ID))
	}
	for _, h := range ledgers {
		if h.Unresolved() {
			td.Left = append(td.Left, fmt.Sprintf("an instance RunInstances may have launched (client token %s; its answer was lost)", ec2.HostName(t.cfg.Run, h.Index)))
		}
	}
	// A repository the run created but the steps never saw is only in doubt when finding failed:
	// found and not removed is in Remaining, not found means gone (a stalled delete may still
	// have landed).
	if ensured.Created && ensured.Ephemeral && res.Steps[0].Err != nil && !slices.ContainsFunc(res.Found, isRepository) {
		td.Left = append(td.Left, fmt.Sprintf("repository %s of run %s", t.repo.Name(), t.cfg.Run.ID))
	}
	if len(td.Left) > 0 {
		td.Sweep = fmt.Sprintf("go run ./ci sweep --run-id %s --region %s --repository %s", t.cfg.Run.ID, t.cfg.AWS.Region, t.cfg.Repository)
	}

	err := teardown.Errors(steps)
	if err == nil && len(td.Left) == 0 {
		t.mu.Lock()
		t.torn = true
		t.mu.Unlock()
		return td, nil
	}
	if err == nil {
		err = fmt.Errorf("%d resources may remain", len(td.Left))
	}
	return td, fmt.Errorf("teardown of run %s: %w", t.cfg.Run.ID, err)
}

func isRepository(r teardown.Resource) bool { return r.Kind == teardown.KindRepository }
