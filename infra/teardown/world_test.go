package teardown_test

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/iam"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// world is one AWS double with an sshd that boots from user-data, and the tool's clients.
type world struct {
	t     testing.TB
	d     *awsdouble.Double
	sshd  *awsdouble.SSHD
	hosts *ec2.Hosts
	repo  *ecr.Repository
	run   runtag.Run
}

var created = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newWorld(t testing.TB, o awsdouble.Options) *world {
	t.Helper()
	o.PendingDescribes, o.ShuttingDownDescribes, o.NotFoundCalls, o.DependencyAttempts = 2, 2, 1, 2
	d := awsdouble.New(o)
	t.Cleanup(d.Close)
	sshd, err := awsdouble.StartSSHD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sshd.Close() })
	d.OnRunInstances = sshd.Boot
	fast := ec2.Poll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: 5 * time.Second}
	// A group that stays in use (its instance was never terminated) fails fast instead of in 5 min.
	groups := ec2.Poll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: 300 * time.Millisecond}
	hosts := ec2.NewFromConfig(d.Config(), ec2.Options{
		AMIs:     ssm.NewFromConfig(d.Config()),
		DetectIP: func(context.Context) (netip.Addr, error) { return netip.MustParseAddr("203.0.113.7"), nil },
		Timing:   ec2.Timing{Running: fast, Terminated: fast, SSH: fast, GroupDelete: groups, Visibility: fast},
		SSHPort:  sshd.Port(),
	})
	return &world{t: t, d: d, sshd: sshd, hosts: hosts, repo: ecr.NewFromConfig(d.Config(), "drill"),
		run: runtag.Run{ID: "r1", App: "app", GitSHA: "abc1234", CreatedAt: created, Lifetime: 30 * time.Minute}}
}

// provision does what the AWS target does before the drill: an ephemeral repository, registry
// credentials, and the host. The plan covers whatever got created, even on error.
func (w *world) provision(ctx context.Context) (teardown.Plan, error) {
	plan := teardown.Plan{RunID: w.run.ID, Hosts: w.hosts, Repository: w.repo, Retention: &ecr.Retention{Keep: []string{"v"}}, Logf: w.t.Logf}
	if _, err := w.repo.EnsureRepository(ctx, w.run, true); err != nil {
		return plan, err
	}
	if _, err := w.repo.RegistryAuth(ctx); err != nil {
		return plan, err
	}
	var err error
	plan.Host, err = w.hosts.LaunchHost(ctx, ec2.HostSpec{Run: w.run})
	return plan, err
}

// teardown runs the plan from a fresh context, as the target's deferred teardown does.
func (w *world) teardown(ctx context.Context, plan teardown.Plan) error {
	ctx, cancel := teardown.FreshContext(ctx, 30*time.Second)
	defer cancel()
	return teardown.Run(ctx, plan.Steps(), logWriter{w.t})
}

// assertClean checks the double holds nothing of the run and served only what IAM allows.
func (w *world) assertClean() {
	w.t.Helper()
	if left := w.d.Leftovers(runtag.KeyRunID, w.run.ID); len(left) > 0 {
		w.t.Errorf("left behind: %v", left)
	}
	policy, err := iam.Load()
	if err != nil {
		w.t.Fatal(err)
	}
	for _, op := range distinct(w.d.Operations()) {
		if !policy.Allows(op) {
			w.t.Errorf("the double served %s, which infra/iam/policy.json does not allow", op)
		}
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

type logWriter struct{ t testing.TB }

func (l logWriter) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
