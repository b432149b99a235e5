package teardown_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/iam"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/infra/wait"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// world is one AWS double and the tool's clients. Nothing here dials SSH: LaunchHost ends when
// the instance runs, and the AWS target's tests cover SSH and Docker.
type world struct {
	t         testing.TB
	d         *awsdouble.Double
	hosts     *ec2.Hosts
	balancers *elbv2.Balancers
	repo      *ecr.Repository
	run       runtag.Run
	log       *slog.Logger
	fleet     bool // the plan removes load balancers too
}

var created = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newWorld(t testing.TB, o awsdouble.Options) *world {
	t.Helper()
	o.PendingDescribes, o.ShuttingDownDescribes, o.NotFoundCalls, o.DependencyAttempts = 2, 2, 1, 2
	// A load balancer second lasts a millisecond; it provisions for 10 ms, shows for 5 ms
	// after its deletion, and its target group stays in use for two more attempts.
	o.ELBv2 = awsdouble.ELBv2Options{Second: time.Millisecond, Provisioning: 10 * time.Millisecond, Deleting: 5 * time.Millisecond, InUseAttempts: 2}
	d := awsdouble.New(o)
	d.CheckTarget = func(context.Context, awsdouble.TargetCheck) error { return nil }
	t.Cleanup(d.Close)
	fast := wait.Poll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: 5 * time.Second}
	// A group that stays in use (its instance was never terminated) fails fast instead of in 5 min.
	groups := wait.Poll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: 300 * time.Millisecond}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	hosts := ec2.NewFromConfig(d.Config(), ec2.Options{
		AMIs:     ssm.NewFromConfig(d.Config()),
		DetectIP: func(context.Context) (netip.Addr, error) { return netip.MustParseAddr("203.0.113.7"), nil },
		Timing:   ec2.Timing{Running: fast, Terminated: fast, GroupDelete: groups, Visibility: fast},
		Log:      log,
	})
	balancers := elbv2.NewFromConfig(d.Config(), elbv2.Options{Log: log, Timing: elbv2.Timing{Available: fast, InService: fast,
		Deregistered: fast, Deleted: fast, GroupDelete: fast}})
	return &world{t: t, d: d, hosts: hosts, balancers: balancers, repo: ecr.NewFromConfig(d.Config(), "drill"), log: log,
		run: runtag.Run{ID: "r1", App: "app", GitSHA: "abc1234", CreatedAt: created, Lifetime: 30 * time.Minute}}
}

func (w *world) plan() teardown.Plan {
	p := teardown.Plan{Hosts: w.hosts, Repositories: []*ecr.Repository{w.repo}, Log: w.log}
	if w.fleet {
		p.Balancers = w.balancers
	}
	return p
}

// provision does what the AWS target does before the drill: an ephemeral repository, registry
// credentials, and the host. The ledger covers whatever got created, even on error.
func (w *world) provision(ctx context.Context) (*ec2.Host, error) {
	if _, err := w.repo.EnsureRepository(ctx, w.run, true); err != nil {
		return nil, err
	}
	if _, err := w.repo.RegistryAuth(ctx); err != nil {
		return nil, err
	}
	return w.hosts.LaunchHost(ctx, ec2.HostSpec{Run: w.run})
}

// teardown removes the run from a fresh context, as the target's deferred teardown does.
func (w *world) teardown(ctx context.Context, ledger *ec2.Host) teardown.Result {
	ctx, cancel := teardown.FreshContext(ctx, 30*time.Second)
	defer cancel()
	return w.plan().Remove(ctx, teardown.ForRun(w.run.ID, ledger), false)
}

// assertClean checks the double holds nothing of the run and served only what IAM allows.
func (w *world) assertClean() {
	w.t.Helper()
	if left := slices.Concat(w.d.ELBv2Leftovers(runtag.KeyRunID, w.run.ID), w.d.Leftovers(runtag.KeyRunID, w.run.ID)); len(left) > 0 {
		w.t.Errorf("left behind: %v", left)
	}
	if err := iam.Refuses(w.d.Operations()); err != nil {
		w.t.Errorf("the double's calls: %v", err)
	}
}

// cancelAfter makes the first successful answer to op get lost: the client's context is
// cancelled after the double acted and before the answer arrives.
func (w *world) cancelAfter(op string, cancel context.CancelFunc) {
	var once sync.Once
	w.d.AfterOp = func(served string, r *http.Request) {
		if served != op {
			return
		}
		once.Do(func() {
			cancel()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
	}
}

func fault(op string) awsdouble.Fault {
	if strings.HasPrefix(op, "elasticloadbalancing:") {
		return awsdouble.Fault{Op: op, Code: "AccessDenied", Status: http.StatusForbidden, Message: "injected: not authorized"}
	}
	if strings.HasPrefix(op, "ec2:") {
		return awsdouble.Fault{Op: op, Code: "UnauthorizedOperation", Status: http.StatusForbidden, Message: "injected: not authorized"}
	}
	return awsdouble.Fault{Op: op, Code: "AccessDeniedException", Message: "injected: access denied"}
}

func distinct(ops []string) []string {
	var out []string
	for _, op := range ops {
		if !slices.Contains(out, op) {
			out = append(out, op)
		}
	}
	return out
}

func labels(rs []teardown.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Label())
	}
	return out
}
