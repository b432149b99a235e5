package teardown_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// The double's default VPC subnets, one per zone.
var subnets = []string{"subnet-000000000000def00", "subnet-000000000000def01"}

func newFleetWorld(t testing.TB, o awsdouble.Options) *world {
	w := newWorld(t, o)
	w.fleet = true
	return w
}

// provisionFleet does what a fleet run does before the drill: the host as for a single-host
// run, a security group for the load balancer (tagged with the run's tags, as infra/ec2 will
// make it; the load balancer holds it until it is gone), the load balancer, and the host
// registered and healthy. The ledgers cover whatever got created, even on error.
func (w *world) provisionFleet(ctx context.Context) (*ec2.Host, *elbv2.Balancer, error) {
	host, err := w.provision(ctx)
	if err != nil {
		return host, nil, err
	}
	var tags []types.Tag
	for _, t := range w.run.Tags() {
		tags = append(tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	sg, err := sdkec2.NewFromConfig(w.d.Config()).CreateSecurityGroup(ctx, &sdkec2.CreateSecurityGroupInput{
		GroupName: aws.String(w.run.ResourceName() + "-lb"), Description: aws.String("the load balancer"), VpcId: aws.String("vpc-0000000000000def0"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: tags}}})
	if err != nil {
		return host, nil, err
	}
	lb, err := w.balancers.CreateFleetBalancer(ctx, elbv2.FleetSpec{Run: w.run, SubnetIDs: subnets, SecurityGroupIDs: []string{aws.ToString(sg.GroupId)}})
	if err != nil {
		return host, lb, err
	}
	return host, lb, lb.Register(ctx, []string{host.InstanceID})
}

// lbGroup is the id of the load balancer's security group, which provisionFleet created.
func (w *world) lbGroup() string {
	for _, g := range w.d.SecurityGroups() {
		if g.Name == w.run.ResourceName()+"-lb" {
			return g.ID
		}
	}
	return ""
}

func (w *world) fleetSelection(host *ec2.Host, lb *elbv2.Balancer) teardown.Selection {
	sel := teardown.ForRun(w.run.ID, host)
	sel.Balancer = lb
	return sel
}

func (w *world) teardownFleet(ctx context.Context, host *ec2.Host, lb *elbv2.Balancer) teardown.Result {
	ctx, cancel := teardown.FreshContext(ctx, 30*time.Second)
	defer cancel()
	return w.plan().Remove(ctx, w.fleetSelection(host, lb), false)
}

// fleetOps runs the fleet's happy path once and returns the operations its provisioning and
// teardown made, in order of first use.
func fleetOps(t *testing.T) (provisioning, teardownOps []string) {
	w := newFleetWorld(t, awsdouble.Options{})
	host, lb, err := w.provisionFleet(t.Context())
	if err != nil {
		t.Fatalf("happy path: %v", err)
	}
	n := len(w.d.Operations())
	if err := w.teardownFleet(t.Context(), host, lb).Err(); err != nil {
		t.Fatalf("happy teardown: %v", err)
	}
	w.assertClean()
	ops := w.d.Operations()
	return distinct(ops[:n]), distinct(ops[n:])
}

var fleetSteps = []string{"find", "delete listeners", "delete load balancers", "delete target groups", "terminate instances",
	"wait until terminated", "delete security groups", "delete key pairs", "delete detached volumes", "delete ephemeral repositories"}

func stepNames(steps []teardown.StepResult) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Name)
	}
	return out
}

func TestFleetHappyPathLeavesNothing(t *testing.T) {
	tests := []struct {
		name string
		opts awsdouble.Options
	}{
		{"a calm account", awsdouble.Options{}},
		{"a fifth of all calls throttled", awsdouble.Options{Throttle: 0.2, Seed: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newFleetWorld(t, tt.opts)
			host, lb, err := w.provisionFleet(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			lbGroup := w.lbGroup()
			res := w.teardownFleet(t.Context(), host, lb)
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			w.assertClean()
			if got := stepNames(res.Steps); !slices.Equal(got, fleetSteps) {
				t.Errorf("steps %v, want %v", got, fleetSteps)
			}
			want := []string{"listener deploydrill-r1:80", "load balancer deploydrill-r1", "target group deploydrill-r1",
				"instance " + host.InstanceID, "volume " + host.VolumeIDs[0], "security group " + host.SecurityGroupID,
				"security group " + lbGroup, "key pair deploydrill-r1", "repository drill"}
			if got := labels(res.Removed); !slices.Equal(got, want) {
				t.Errorf("removed %v, want %v (in deletion order)", got, want)
			}
			if len(res.Remaining) != 0 {
				t.Errorf("a clean teardown says %v may remain", res.Remaining)
			}
			if res := w.teardownFleet(t.Context(), host, lb); res.Err() != nil || len(res.Remaining) != 0 {
				t.Errorf("a second teardown must be a no-op: %v, remaining %v", res.Err(), res.Remaining)
			}
		})
	}
}

func TestFleetSweepHasTheSameSteps(t *testing.T) {
	w := newFleetWorld(t, awsdouble.Options{})
	if _, _, err := w.provisionFleet(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, err := w.plan().Sweep(t.Context(), w.selector(), false)
	if err != nil || len(res.Remaining) != 0 {
		t.Fatalf("sweep: %v, remaining %v", err, res.Remaining)
	}
	if got := stepNames(res.Steps); !slices.Equal(got, fleetSteps) {
		t.Errorf("sweep steps %v, want teardown's %v", got, fleetSteps)
	}
	w.assertClean()
}

func TestFleetDryRunListsAndRemovesNothing(t *testing.T) {
	w := newFleetWorld(t, awsdouble.Options{})
	host, lb, err := w.provisionFleet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := slices.Concat(w.d.ELBv2Leftovers(runtag.KeyRunID, "r1"), w.d.Leftovers(runtag.KeyRunID, "r1"))
	res := w.plan().Remove(t.Context(), w.fleetSelection(host, lb), true)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if got := slices.Concat(w.d.ELBv2Leftovers(runtag.KeyRunID, "r1"), w.d.Leftovers(runtag.KeyRunID, "r1")); !slices.Equal(got, before) {
		t.Errorf("a dry run changed %v into %v", before, got)
	}
	if got := labels(res.Found); len(got) != 9 || got[0] != "listener deploydrill-r1:80" || got[2] != "target group deploydrill-r1" {
		t.Errorf("dry run found %v: want the listener, load balancer and target group first, 9 in all", got)
	}
	if len(res.Removed) != 0 || len(res.Remaining) != 9 {
		t.Errorf("dry run: removed %v, remaining %v", res.Removed, res.Remaining)
	}
}

func TestFleetProvisioningRefusedOrInterruptedAtEachStep(t *testing.T) {
	provisioning, _ := fleetOps(t)
	single, _ := happyOps(t)
	for _, op := range provisioning {
		if slices.Contains(single, op) && !strings.HasPrefix(op, "elasticloadbalancing:") {
			continue // the single host's steps: TestProvisioningInterruptedAtEachStep
		}
		t.Run(op+" refused", func(t *testing.T) {
			w := newFleetWorld(t, awsdouble.Options{})
			f := fault(op)
			f.Times = 1
			w.d.Inject(f)
			host, lb, err := w.provisionFleet(t.Context())
			if err == nil || !strings.Contains(err.Error(), f.Code) {
				t.Fatalf("provision: %v, want the %s error", err, f.Code)
			}
			if err := w.teardownFleet(t.Context(), host, lb).Err(); err != nil {
				t.Fatalf("teardown: %v", err)
			}
			w.assertClean()
		})
		t.Run("cancelled after "+op, func(t *testing.T) {
			w := newFleetWorld(t, awsdouble.Options{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w.cancelAfter(op, cancel)
			host, lb, err := w.provisionFleet(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("provision: %v, want context.Canceled", err)
			}
			w.d.AfterOp = nil
			if err := w.teardownFleet(t.Context(), host, lb).Err(); err != nil {
				t.Fatalf("teardown: %v", err)
			}
			w.assertClean()
		})
	}
}

// TestSweepAfterAFleetRunKilledAtEachStep: the runner dies after each call of the fleet's
// provisioning; no teardown runs, and sweep alone (by the tags) removes everything.
func TestSweepAfterAFleetRunKilledAtEachStep(t *testing.T) {
	provisioning, _ := fleetOps(t)
	for _, op := range provisioning {
		t.Run("killed after "+op, func(t *testing.T) {
			w := newFleetWorld(t, awsdouble.Options{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w.cancelAfter(op, cancel)
			if _, _, err := w.provisionFleet(ctx); err == nil {
				t.Fatal("provision survived the kill")
			}
			w.d.AfterOp = nil
			if runs, removed := w.sweepUntilClean(runtag.Selector{RunID: "r1"}); runs > 3 {
				t.Errorf("not clean after 3 sweeps; removed %v", removed)
			}
			w.assertClean()
		})
	}
}

func TestFleetTeardownFailingAtEachStep(t *testing.T) {
	_, teardownOps := fleetOps(t)
	for _, op := range teardownOps {
		if !strings.HasPrefix(op, "elasticloadbalancing:") {
			continue // the single host's: TestTeardownFailingAtEachStep
		}
		t.Run(op+" refused, then retried", func(t *testing.T) {
			w := newFleetWorld(t, awsdouble.Options{})
			host, lb, err := w.provisionFleet(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			w.d.Inject(fault(op))
			res := w.teardownFleet(t.Context(), host, lb)
			if err := res.Err(); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("teardown with %s refused: %v, want the injected error", op, err)
			}
			if len(res.Remaining) == 0 && res.Steps[0].Err == nil && op != "elasticloadbalancing:DeleteListener" {
				t.Errorf("teardown with %s refused says nothing may remain", op)
			}
			if _, ok := w.d.Repository("drill"); ok {
				t.Errorf("a failing load balancer step stopped the repository step: %v", res.Err())
			}
			w.d.ClearFaults()
			if err := w.teardownFleet(t.Context(), host, lb).Err(); err != nil {
				t.Fatalf("second teardown: %v", err)
			}
			w.assertClean()
		})
		t.Run(op+" interrupted, then retried", func(t *testing.T) {
			w := newFleetWorld(t, awsdouble.Options{})
			host, lb, err := w.provisionFleet(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w.cancelAfter(op, cancel)
			if err := w.plan().Remove(ctx, w.fleetSelection(host, lb), false).Err(); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted teardown: %v, want context.Canceled", err)
			}
			w.d.AfterOp = nil
			if err := w.teardownFleet(t.Context(), host, lb).Err(); err != nil {
				t.Fatalf("second teardown: %v", err)
			}
			w.assertClean()
		})
	}
}

// TestAListenerLeftBehindDoesNotStopTheRest: DeleteListener is refused, so the listener is
// still there when the target group is deleted; the load balancer's deletion takes the
// listener with it, and DeleteTargetGroup retries ResourceInUse until AWS lets go.
func TestAListenerLeftBehindDoesNotStopTheRest(t *testing.T) {
	w := newFleetWorld(t, awsdouble.Options{})
	host, lb, err := w.provisionFleet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w.d.Inject(fault("elasticloadbalancing:DeleteListener"))
	res := w.teardownFleet(t.Context(), host, lb)
	err = res.Err()
	if err == nil || !strings.HasPrefix(err.Error(), "delete listeners: ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("teardown: %v, want the listener step's error alone", err)
	}
	if len(res.Remaining) != 0 {
		t.Errorf("remaining %v: the listener went with its load balancer", res.Remaining)
	}
	inUse := 0
	for _, op := range w.d.Operations() {
		if op == "elasticloadbalancing:DeleteTargetGroup" {
			inUse++
		}
	}
	if inUse < 3 {
		t.Errorf("%d DeleteTargetGroup calls: want ResourceInUse retried", inUse)
	}
	w.assertClean()
}

func TestAPlanWithoutELBv2SaysItCannotRemoveABalancer(t *testing.T) {
	w := newFleetWorld(t, awsdouble.Options{})
	host, lb, err := w.provisionFleet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w.fleet = false
	res := w.teardownFleet(t.Context(), host, lb)
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "no ELBv2 client") {
		t.Errorf("teardown without an ELBv2 client: %v, want it to say so", err)
	}
	w.fleet = true
	if err := w.teardownFleet(t.Context(), host, lb).Err(); err != nil {
		t.Fatal(err)
	}
	w.assertClean()
}

// TestTheFleetLedgersAreRemovedToo: Selection.Fleet names further hosts' ledgers, removed
// like Ledger's, even where no listing can see them yet.
func TestTheFleetLedgersAreRemovedToo(t *testing.T) {
	w := newFleetWorld(t, awsdouble.Options{})
	host, lb, err := w.provisionFleet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	second, err := w.hosts.LaunchHost(t.Context(), ec2.HostSpec{Run: runtag.Run{ID: "r1-2", CreatedAt: created, Lifetime: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	sel := w.fleetSelection(host, lb)
	sel.Fleet = []*ec2.Host{second, nil}
	res := w.plan().Remove(t.Context(), sel, false)
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(labels(res.Removed), "instance "+second.InstanceID) || !slices.Contains(labels(res.Removed), "key pair deploydrill-r1-2") {
		t.Errorf("removed %v: want the second host's instance and key pair too", labels(res.Removed))
	}
	w.assertClean()
	if left := w.d.Leftovers(runtag.KeyRunID, "r1-2"); len(left) > 0 {
		t.Errorf("the second host left %v", left)
	}
}
