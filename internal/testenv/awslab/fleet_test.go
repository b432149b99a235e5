package awslab_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/iam"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/infra/wait"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// second is one second of the target group's settings in the lab: a 5 s health check interval
// runs every second, in HAProxy as in the double.
const second = 200 * time.Millisecond

func labBalancerTiming() elbv2.Timing {
	p := func(timeout time.Duration) wait.Poll {
		return wait.Poll{Initial: 50 * time.Millisecond, Max: 250 * time.Millisecond, Timeout: timeout}
	}
	return elbv2.Timing{Available: p(30 * time.Second), InService: p(30 * time.Second), Deregistered: p(30 * time.Second),
		Deleted: p(30 * time.Second), GroupDelete: p(30 * time.Second)}
}

// app is a tiny HTTP server inside an instance's namespace on its address, port 80: /health
// answers ok, / answers the instance id.
type app struct {
	id  string
	srv *http.Server
}

func serveApp(t *testing.T, in *awslab.Instance) *app {
	t.Helper()
	ln, err := testenv.ListenInNetns(in.NetnsPath(), "tcp", net.JoinHostPort(in.Addr, "80"))
	if err != nil {
		t.Fatal(err)
	}
	a := &app{id: in.ID}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"status": "ok"}`) })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, in.ID) })
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	t.Cleanup(a.stop)
	return a
}

func (a *app) stop() { _ = a.srv.Close() }

// users send requests through the load balancer, as the drill's users do.
type users struct {
	url    string
	client *http.Client
}

func (u users) get() (string, error) {
	resp, err := u.client.Get(u.url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", resp.Status)
	}
	return string(body), nil
}

// burst sends n requests and counts who answered and how many failed.
func (u users) burst(n int) (map[string]int, int) {
	seen, failed := map[string]int{}, 0
	for range n {
		who, err := u.get()
		if err != nil {
			failed++
			continue
		}
		seen[who]++
	}
	return seen, failed
}

// poll calls ok every 20 ms until it holds, failing the test after limit.
func poll(t *testing.T, limit time.Duration, what string, ok func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		done, state := ok()
		if done {
			return time.Since(start)
		}
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s (now: %s)", limit, what, state)
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func servers(t *testing.T, b *awslab.Balancer) map[string]awslab.BalancerServer {
	t.Helper()
	list, err := b.Servers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]awslab.BalancerServer{}
	for _, s := range list {
		out[s.InstanceID] = s
	}
	return out
}

func describe(m map[string]awslab.BalancerServer) string {
	var parts []string
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range m {
			if !yield(id) {
				return
			}
		}
	}) {
		s := m[id]
		parts = append(parts, fmt.Sprintf("%s %s %s (%s) sessions %d", id, s.Status, s.Transition, s.CheckStatus, s.TotalSessions))
	}
	return strings.Join(parts, ", ")
}

// TestAFleetBehindHAProxy boots three lab instances through the double with infra/ec2's fleet
// support, puts them behind a load balancer made with infra/elbv2, and checks that the lab's
// HAProxy is the load balancer: all three UP and answering through its address; one whose
// server stops goes DOWN within interval × unhealthy threshold while the users' requests keep
// succeeding on the others, and the double says unhealthy; one deregistered drains (no new
// requests) and leaves; teardown removes the load balancer, its target group and listener, the
// instances and the groups, and HAProxy's namespace with them.
func TestAFleetBehindHAProxy(t *testing.T) {
	t.Parallel()
	awslab.RequireBalancers(t)
	ctx := t.Context()
	l := awslab.Start(t, awslab.Options{WithoutEngine: true, FirstIndex: 20,
		Double: awsdouble.Options{ELBv2: awsdouble.ELBv2Options{Second: second}}})
	r := newRun(t, l, "fleet")
	cfg := l.Double.Config()
	balancers := elbv2.NewFromConfig(cfg, elbv2.Options{Timing: labBalancerTiming(), Log: r.log})
	run := r.spec().Run

	var fleet []*ec2.Host
	var lb *elbv2.Balancer
	tornDown := false
	defer func() {
		if tornDown {
			return
		}
		ctx, cancel := teardown.FreshContext(ctx, 2*time.Minute)
		defer cancel()
		sel := teardown.ForRun(run.ID, nil)
		sel.Fleet, sel.Balancer = fleet, lb
		plan := teardown.Plan{Hosts: r.hosts, Balancers: balancers, Log: r.log}
		if res := plan.Remove(ctx, sel, false); res.Err() != nil {
			t.Errorf("teardown: %v", res.Err())
		}
	}()

	start := time.Now()
	groups, err := r.hosts.CreateFleetGroups(ctx, ec2.FleetGroupsSpec{Run: run,
		ClientCIDR: netip.MustParsePrefix(awslab.BalancerClientCIDR), SSHCIDR: netip.MustParsePrefix(awslab.SSHCIDR)})
	if err != nil {
		t.Fatal(err)
	}
	subnets, err := r.hosts.FleetSubnets(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		spec := ec2.HostSpec{Run: run, Index: i, SecurityGroupID: groups.Hosts, SubnetID: subnets[i%len(subnets)].ID, User: l.RemoteUser()}
		if i > 0 {
			spec.KeyFrom = fleet[0]
		}
		host, err := r.hosts.LaunchHost(ctx, spec)
		if host != nil {
			fleet = append(fleet, host)
		}
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
	}
	insts := l.Instances()
	apps := map[string]*app{}
	var ids []string
	for _, in := range insts {
		apps[in.ID] = serveApp(t, in)
		ids = append(ids, in.ID)
	}
	t.Logf("3 instances booted in %s", time.Since(start).Round(time.Millisecond))

	// Port 80 of a host is the load balancer's alone: the runner's own request times out.
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(insts[0].Addr, "80"), time.Second); err == nil {
		c.Close()
		t.Error("the runner reached a host's port 80 directly: the hosts group admits only the load balancer")
	}

	lb, err = balancers.CreateFleetBalancer(ctx, elbv2.FleetSpec{Run: run, SubnetIDs: ec2.SubnetIDs(subnets), SecurityGroupIDs: []string{groups.LoadBalancer},
		Health:              elbv2.HealthCheck{Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2},
		DeregistrationDelay: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	data := l.BalancerAt(lb.DNSName)
	if data == nil {
		t.Fatalf("no data plane serves the load balancer's DNS name %s", lb.DNSName)
	}
	interval, threshold := 5*second, 2
	start = time.Now()
	if err := lb.Register(ctx, ids); err != nil {
		t.Fatal(err)
	}
	t.Logf("3 targets in service %s after RegisterTargets", time.Since(start).Round(time.Millisecond))
	if s := servers(t, data); len(s) != 3 || s[ids[0]].Status != "UP" || s[ids[1]].Status != "UP" || s[ids[2]].Status != "UP" {
		t.Fatalf("HAProxy: %s; want 3 UP", describe(s))
	}
	u := users{url: "http://" + lb.DNSName + "/", client: &http.Client{Timeout: 2 * time.Second}}
	if seen, failed := u.burst(30); failed > 0 || len(seen) != 3 {
		t.Fatalf("30 requests through the load balancer: reached %v, %d failed; want all 3 hosts and no failure", seen, failed)
	}

	t.Run("a host whose server stops goes DOWN while the others serve", func(t *testing.T) {
		faulty := ids[2]
		apps[faulty].stop()
		stopped := time.Now()
		var failedMeanwhile, sent int
		took := poll(t, time.Duration(threshold)*interval+interval+2*time.Second, "HAProxy to mark "+faulty+" DOWN", func() (bool, string) {
			if _, err := u.get(); err != nil {
				failedMeanwhile++
			}
			sent++
			s := servers(t, data)
			return s[faulty].Status == "DOWN", describe(s)
		})
		t.Logf("HAProxy marked %s DOWN %s after its server stopped (interval %s × unhealthy threshold %d = %s); %d of %d requests failed meanwhile",
			faulty, took.Round(time.Millisecond), interval, threshold, time.Duration(threshold)*interval, failedMeanwhile, sent)
		if s := servers(t, data)[faulty]; s.CheckStatus != "L4CON" {
			t.Errorf("last check %s, want L4CON (connection refused)", s.CheckStatus)
		}
		poll(t, 2*time.Second, "the double to report "+faulty+" unhealthy", func() (bool, string) {
			states, err := lb.TargetHealth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(states, func(s elbv2.TargetState) bool { return s.InstanceID == faulty })
			return i >= 0 && states[i].State == "unhealthy" && states[i].Reason == "Target.FailedHealthChecks", fmt.Sprintf("%+v", states)
		})
		t.Logf("the double reported it unhealthy %s after the server stopped", time.Since(stopped).Round(time.Millisecond))
		seen, failed := u.burst(40)
		if failed > 0 || seen[faulty] > 0 || seen[ids[0]] == 0 || seen[ids[1]] == 0 {
			t.Errorf("40 requests with %s down: reached %v, %d failed; want the other two only, no failure", faulty, seen, failed)
		}
	})

	t.Run("a deregistered host drains and leaves", func(t *testing.T) {
		leaving := ids[1]
		done := make(chan error, 1)
		go func() { done <- lb.Deregister(ctx, []string{leaving}) }()
		poll(t, 2*time.Second, "HAProxy to drain "+leaving, func() (bool, string) {
			s := servers(t, data)
			return s[leaving].Status == "DRAIN", describe(s)
		})
		before := servers(t, data)[leaving].TotalSessions
		seen, failed := u.burst(20)
		if failed > 0 || seen[leaving] > 0 || seen[ids[0]] != 20 {
			t.Errorf("20 requests while %s drains: reached %v, %d failed; want %s alone", leaving, seen, failed, ids[0])
		}
		if after := servers(t, data)[leaving].TotalSessions; after != before {
			t.Errorf("HAProxy sent the draining host %d new requests", after-before)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Deregister still waiting 30 s after the 1 s deregistration delay")
		}
		if s := servers(t, data); len(s) != 2 || s[leaving].Server != "" {
			t.Errorf("after the deregistration delay HAProxy still has %s: %s", leaving, describe(s))
		}
	})

	ctxDown, cancel := teardown.FreshContext(ctx, 2*time.Minute)
	defer cancel()
	sel := teardown.ForRun(run.ID, fleet[0])
	sel.Fleet, sel.Balancer = fleet[1:], lb
	plan := teardown.Plan{Hosts: r.hosts, Balancers: balancers, Log: r.log}
	start = time.Now()
	res := plan.Remove(ctxDown, sel, false)
	tornDown = true
	if err := res.Err(); err != nil {
		t.Fatalf("teardown: %v; may remain %v", err, res.Remaining)
	}
	t.Logf("teardown took %s", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{"listener", "load balancer", "target group", "instance", "security group", "key pair"} {
		if !slices.ContainsFunc(res.Removed, func(r teardown.Resource) bool { return r.Kind == want }) {
			t.Errorf("teardown removed %v: no %s", res.Removed, want)
		}
	}
	if _, err := os.Stat(data.Lab.NetnsPath()); !errors.Is(err, os.ErrNotExist) || !data.Closed() {
		t.Errorf("HAProxy's namespace %s after teardown: %v (closed %v)", data.Lab.NetnsPath(), err, data.Closed())
	}
	l.AssertNothingLeft(t)
	if err := iam.Refuses(l.Double.Operations()); err != nil {
		t.Errorf("the fleet's calls: %v", err)
	}
}

// TestASweepRemovesAForgottenFleet: a run killed after its load balancer existed left a fleet
// nobody's ledger names; a sweep by the run's tags finds it all and removes it in dependency
// order (the hosts group, whose rule names the load balancer's, before that one), and the
// load balancer's data plane goes with it.
func TestASweepRemovesAForgottenFleet(t *testing.T) {
	t.Parallel()
	awslab.RequireBalancers(t)
	ctx := t.Context()
	l := awslab.Start(t, awslab.Options{WithoutEngine: true, FirstIndex: 30,
		Double: awsdouble.Options{ELBv2: awsdouble.ELBv2Options{Second: second}}})
	r := newRun(t, l, "fleet-swept")
	balancers := elbv2.NewFromConfig(l.Double.Config(), elbv2.Options{Timing: labBalancerTiming(), Log: r.log})
	run := r.spec().Run
	groups, err := r.hosts.CreateFleetGroups(ctx, ec2.FleetGroupsSpec{Run: run,
		ClientCIDR: netip.MustParsePrefix(awslab.BalancerClientCIDR), SSHCIDR: netip.MustParsePrefix(awslab.SSHCIDR)})
	if err != nil {
		t.Fatal(err)
	}
	subnets, err := r.hosts.FleetSubnets(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	host, err := r.hosts.LaunchHost(ctx, ec2.HostSpec{Run: run, SecurityGroupID: groups.Hosts, SubnetID: subnets[0].ID, User: l.RemoteUser()})
	if err != nil {
		t.Fatal(err)
	}
	serveApp(t, l.Instances()[0])
	lb, err := balancers.CreateFleetBalancer(ctx, elbv2.FleetSpec{Run: run, SubnetIDs: ec2.SubnetIDs(subnets), SecurityGroupIDs: []string{groups.LoadBalancer}})
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Register(ctx, []string{host.InstanceID}); err != nil {
		t.Fatal(err)
	}
	data := l.BalancerAt(lb.DNSName)
	if who, err := (users{url: "http://" + lb.DNSName + "/", client: &http.Client{Timeout: 2 * time.Second}}).get(); err != nil || who != host.InstanceID {
		t.Fatalf("through the load balancer: %q, %v", who, err)
	}

	plan := teardown.Plan{Hosts: r.hosts, Balancers: balancers, Log: r.log}
	res, err := plan.Sweep(ctx, runtag.Selector{RunID: run.ID}, false)
	if err != nil || len(res.Remaining) > 0 {
		t.Fatalf("sweep: %v; remaining %v", err, res.Remaining)
	}
	var order []string
	for _, r := range res.Removed {
		if r.Kind == ec2.KindSecurityGroup {
			order = append(order, r.ID)
		}
	}
	if want := []string{groups.Hosts, groups.LoadBalancer}; !slices.Equal(order, want) {
		t.Errorf("groups removed in the order %v, want %v", order, want)
	}
	if !data.Closed() {
		t.Error("the load balancer's data plane outlived the sweep")
	}
	l.AssertNothingLeft(t)
}
