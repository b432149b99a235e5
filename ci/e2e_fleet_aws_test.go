package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/report"
	"github.com/deploydrill/deploydrill/infra/iam"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// labSecond is one second of a target group's settings in the lab: the double and HAProxy run
// a 5 s health check every second, so a drill's figures come out at a fifth of AWS's.
const labSecond = 200 * time.Millisecond

// fleetArgs are a 3-host fleet drill's flags in the lab: the users' load, the load balancer's
// default health check interval and thresholds (5 s × 2 failures: out of rotation after 2 s
// here) and a 5 s drain. The check's timeout is 4 s (800 ms here), not the default 2 s: a
// healthy host's answer through HAProxy on a busy 2-core machine can take longer than 400 ms,
// and a host that leaves the rotation for that proves nothing about the fault.
var fleetArgs = []string{"--hosts", "3", "--fault-hosts", "1", "--auto-rollback", "--load", "20",
	"--health-timeout", "4s", "--deregistration-delay", "5s", "--lb-poll", "100ms", "--outage", "10s"}

func startFleetLab(t testing.TB) *awslab.Lab {
	t.Helper()
	awslab.RequireBalancers(t)
	return startAWSLab(t, awslab.Options{Double: awsdouble.Options{ELBv2: awsdouble.ELBv2Options{Second: labSecond}}})
}

// haproxyWatch records every server's status changes from HAProxy's own stats socket: the
// ground truth of when the load balancer stopped routing to a host.
type haproxyWatch struct {
	mu      sync.Mutex
	changes map[string][]statusChange // by instance id, in order
	stop    context.CancelFunc
	done    chan struct{}
}

type statusChange struct {
	at     time.Time
	status string // UP, DOWN, DRAIN, MAINT...
}

func watchHAProxy(t *testing.T, l *awslab.Lab) *haproxyWatch {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute) // bounded: a drill takes about a minute
	w := &haproxyWatch{changes: map[string][]statusChange{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, b := range l.Balancers() {
				if b.Closed() {
					continue
				}
				servers, err := b.Servers(ctx)
				if err != nil {
					continue
				}
				now := time.Now()
				w.mu.Lock()
				for _, s := range servers {
					seen := w.changes[s.InstanceID]
					if len(seen) == 0 || seen[len(seen)-1].status != s.Status {
						w.changes[s.InstanceID] = append(seen, statusChange{now, s.Status})
					}
				}
				w.mu.Unlock()
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(w.finish)
	return w
}

func (w *haproxyWatch) finish() {
	w.stop()
	<-w.done
}

// firstDown is when HAProxy first had host DOWN at or after from.
func (w *haproxyWatch) firstDown(host string, from time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes[host] {
		if c.status == "DOWN" && !c.at.Before(from) {
			return c.at, true
		}
	}
	return time.Time{}, false
}

// TestAWSFleetDrill drills a fleet of 3 hosts behind the lab's load balancer (HAProxy) with
// the users' load on: a first drill (graceful stop of one host) leaves V verified; then, side
// by side, one kills a host and rolls back to it one host at a time (checkRollingKill), and
// one hangs a host and rolls back all at once (--rolling=false), which does cost capacity (a
// broken build on a fleet: TestAWSFleetBadDeploy). Nothing is left afterwards.
func TestAWSFleetDrill(t *testing.T) {
	t.Parallel()
	l := startFleetLab(t)

	first := newAWSDrill(t, l, "fa", append([]string{"--fault", "stop"}, fleetArgs...)...)
	if run := first.run(t); run.err() != nil {
		t.Fatalf("first fleet drill: %v\n%s", run.err(), run.stderr)
	}
	checkFleetDrill(t, first.report(t), 1)
	l.AssertNothingLeft(t)

	// Both roll back to the first drill's version, side by side in the lab (named: either's V,
	// once verified, would be the newest verified image for the other).
	t.Run("then", func(t *testing.T) {
		t.Run("a kill, rolled back one host at a time", func(t *testing.T) {
			t.Parallel()
			checkRollingKill(t, l, first.version)
		})
		t.Run("a hang, rolled back all at once", func(t *testing.T) {
			t.Parallel()
			third := newAWSDrill(t, l, "fc", append([]string{"--fault", "hang", "--rolling=false", "--rollback-to", first.version}, fleetArgs...)...)
			if run := third.run(t); run.err() != nil {
				t.Fatalf("all-at-once fleet drill: %v\n%s", run.err(), run.stderr)
			}
			r := third.report(t)
			ff := checkFleetDrill(t, r, 3)
			if r.Fleet.Rolling || ff.RollbackMinCapacity == nil || *ff.RollbackMinCapacity != 0 {
				t.Errorf("all at once: rolling %v, capacity during the rollback %v, want every host out together", r.Fleet.Rolling, ff.RollbackMinCapacity)
			}
		})
	})
	l.AssertNothingLeft(t)

	// The role `go run ./ci iam` renders allows every call the fleet drills made.
	if err := iam.Refuses(l.Double.Operations()); err != nil {
		t.Errorf("the fleet drills' calls: %v", err)
	}
}

// A broken build landing on one host of a fleet in a lab of its own: its health checks fail,
// the load balancer takes it out, and the rollback to V redeploys that host alone (the others
// run V and serve).
func TestAWSFleetBadDeploy(t *testing.T) {
	t.Parallel()
	l := startFleetLab(t)
	d := newAWSDrill(t, l, "fd", append([]string{"--fault", "bad-deploy"}, fleetArgs...)...)
	if run := d.run(t); run.err() != nil {
		t.Fatalf("bad-deploy fleet drill: %v\n%s", run.err(), run.stderr)
	}
	r := d.report(t)
	ff := checkFleetDrill(t, r, 1)
	if r.K == nil || r.K.Version != d.version || ff.RollbackUsers == nil || ff.RollbackUsers.Failed != 0 {
		t.Errorf("bad-deploy: K %+v, users during the rollback %+v; want V again and none failed", r.K, ff.RollbackUsers)
	}
	l.AssertNothingLeft(t)
	if err := iam.Refuses(l.Double.Operations()); err != nil {
		t.Errorf("the bad-deploy fleet drill's calls: %v", err)
	}
}

// checkRollingKill kills one host of three: the load balancer takes it out of rotation while the
// other two serve, and the rolling rollback to k replaces all three, one at a time with
// draining, without failing a single user request. HAProxy's stats are the ground truth of
// when it stopped routing to the killed host.
func checkRollingKill(t *testing.T, l *awslab.Lab, k string) {
	t.Helper()
	w := watchHAProxy(t, l)
	second := newAWSDrill(t, l, "fb", append([]string{"--fault", "kill", "--rollback-to", k}, fleetArgs...)...)
	run := second.run(t)
	w.finish()
	if err := run.err(); err != nil {
		t.Fatalf("second fleet drill: %v\n%s", err, run.stderr)
	}
	r := second.report(t)
	if r.K == nil || r.K.Version != k {
		t.Fatalf("K %+v, want the first drill's %s", r.K, k)
	}
	ff := checkFleetDrill(t, r, 3)
	if ff.RollbackUsers == nil || ff.RollbackUsers.Requests == 0 || ff.RollbackUsers.Failed != 0 {
		t.Errorf("users during the rolling rollback: %+v, want requests and none failed (draining)", ff.RollbackUsers)
	}
	if c := ff.RollbackMinCapacity; c == nil || *c != 2 {
		t.Errorf("capacity during the rolling rollback %v, want 2 of 3 (one host replaced at a time)", c)
	}

	// Ground truth: HAProxy marked the killed host DOWN when the drill says the load balancer
	// stopped routing to it, and never the other two while the fault lasted.
	faulty := r.Fleet.Faulty[0]
	down, ok := w.firstDown(faulty, *r.FaultAt)
	if !ok {
		t.Fatalf("HAProxy never marked %s DOWN after the fault", faulty)
	}
	truth := float64(down.Sub(*r.FaultAt).Milliseconds())
	t.Logf("fault to out of rotation: the drill saw %.0f ms, HAProxy's own stats %.0f ms (interval %s × unhealthy threshold 2 = %s)",
		*ff.OutOfRotationMS, truth, 5*labSecond, 10*labSecond)
	// The drill sees what the double read from HAProxy (every 50 ms) at its next poll of the
	// load balancer's view (one probe interval), plus that API call (up to 250 ms on a busy
	// machine); it never sees it before HAProxy had it (50 ms: the two clocks' reads).
	if d, most := *ff.OutOfRotationMS-truth, 50+r.Config.ProbeIntervalMS+250; d < -50 || d > most {
		t.Errorf("the drill saw the host out of rotation %.0f ms after HAProxy did, want within 0 to %.0f ms", d, most)
	}
	rollbackAt := phaseStart(r, "rollback")
	for _, host := range r.Fleet.Hosts[1:] {
		if at, ok := w.firstDown(host, *r.FaultAt); ok && at.Before(rollbackAt) {
			t.Errorf("HAProxy marked %s DOWN %s after the fault: the fault spread", host, at.Sub(*r.FaultAt))
		}
	}
}

// checkFleetDrill checks what every fleet drill must show and returns its fleet figures: it
// passed through the load balancer, the faulty host left the rotation within the health check's
// interval × unhealthy threshold (plus a poll and a check's timeout), the other two stayed, and
// rolledBack hosts rejoined after the rollback.
func checkFleetDrill(t *testing.T, r report.Report, rolledBack int) report.FleetFigures {
	t.Helper()
	if !r.Passed || r.Fleet == nil || r.Figures.Fleet == nil {
		t.Fatalf("passed %v, fleet %v: %+v (error %q)", r.Passed, r.Fleet != nil, r.Expectations, r.Error)
	}
	ff := *r.Figures.Fleet
	if len(r.Fleet.Hosts) != 3 || len(r.Fleet.Faulty) != 1 || ff.Hosts != 3 || ff.FaultyHosts != 1 {
		t.Errorf("fleet %+v, figures %+v: want 3 hosts, 1 faulty", r.Fleet, ff)
	}
	for _, e := range r.Expectations {
		if e.Phase == "outage" && e.Name != "the load balancer takes the faulty hosts out of rotation" {
			t.Errorf("outage expectation %q", e.Name)
		}
	}
	least, most := outOfRotationBounds(r)
	if ff.OutOfRotationMS == nil || *ff.OutOfRotationMS < least || *ff.OutOfRotationMS > most {
		t.Errorf("fault to out of rotation %s ms, want between %.0f and %.0f ms (outOfRotationBounds)", optMS(ff.OutOfRotationMS), least, most)
	}
	if ff.MinCapacity == nil || *ff.MinCapacity != 2 {
		t.Errorf("capacity during the outage %v, want 2 of 3", ff.MinCapacity)
	}
	if ff.OutageUsers == nil || ff.OutageUsers.Requests == 0 {
		t.Errorf("users during the outage: %+v, want requests", ff.OutageUsers)
	}
	back := 0
	for _, h := range ff.PerHost {
		if h.BackInRotationMS != nil {
			back++
		}
	}
	if back != rolledBack {
		t.Errorf("%d hosts back in rotation after the rollback, want %d: %+v", back, rolledBack, ff.PerHost)
	}
	return ff
}

// outOfRotationBounds is the window in which the load balancer must have taken the faulty
// host out of rotation, in ms from where the drill counts (the stop of V for stop and a bad
// deploy, the fault in effect otherwise), derived from the lab's health check (an interval of
// 5 lab seconds, 2 failed checks, a timeout of 4 lab seconds: fleetArgs) and the drill's poll:
//   - at least (threshold − 1) intervals: two failed checks, an interval apart, both after the
//     stop of V (before a target's fault is in effect only by the time Inject took to return:
//     the fault bites before the SSH command that applied it comes back);
//   - at most threshold intervals and a check timeout after the host first fails (at the stop's
//     end, at the latest), plus the double's read of HAProxy (50 ms), one poll of the load
//     balancer's view and 500 ms for that API call and the machine's scheduling.
func outOfRotationBounds(r report.Report) (least, most float64) {
	interval, timeout := 5*labSecond, 4*labSecond // fleetArgs
	const threshold = 2
	stop := r.FaultAt.Sub(*r.StopAt)
	poll := time.Duration(r.Config.ProbeIntervalMS) * time.Millisecond
	lo := (threshold - 1) * interval
	if k := r.Config.Fault.Kind; k != "stop" && k != "bad-deploy" {
		lo -= stop
	}
	hi := stop + threshold*interval + timeout + 50*time.Millisecond + poll + 500*time.Millisecond
	return float64(lo.Milliseconds()), float64(hi.Milliseconds())
}

// phaseStart is when phase started (zero when it did not run).
func phaseStart(r report.Report, phase string) time.Time {
	for _, p := range r.Phases {
		if p.Phase == phase {
			return p.Start
		}
	}
	return time.Time{}
}

// SIGKILL once the fleet's load balancer serves (the live window): nothing tears down, and
// `sweep --run-id` finds the listener, the load balancer, its target group, the hosts, both
// security groups and the key pair by their tags and removes them in dependency order; the
// load balancer's data plane goes with it.
func TestAWSFleetKilledThenSwept(t *testing.T) {
	t.Parallel()
	l := startFleetLab(t)
	d := newAWSDrill(t, l, "flk", append(slices.Clone(fleetArgs), "--live", "60s")...)
	p := d.start(t, " live ")
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.wait(t)
	left := strings.Join(l.Leftovers(), "\n")
	for _, want := range []string{"listener", "load balancer", "target group", "instance"} {
		if !strings.Contains(left, want) {
			t.Fatalf("the killed fleet left no %s: the sweep below proves less than it should\n%s", want, left)
		}
	}

	sweep := runCLI(t, l.Env(), "sweep", "--run-id", d.runID)
	if err := sweep.err(); err != nil {
		t.Fatalf("sweep: %v\n%s", err, sweep.stderr)
	}
	t.Logf("sweep removed:\n%s", sweep.stdout)
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(sweep.stdout), "\n") {
		kinds = append(kinds, strings.Fields(strings.TrimPrefix(line, "removed "))[0])
	}
	if order := slices.Compact(kinds); !slices.Equal(order[:3], []string{"listener", "load", "target"}) {
		t.Errorf("sweep removed %v: want the listener, then the load balancer, then the target group first", order)
	}
	for _, b := range l.Balancers() {
		if !b.Closed() {
			t.Errorf("the load balancer %s's data plane outlived the sweep", b.Name)
		}
	}
	l.AssertNothingLeft(t)
}

func optMS(ms *float64) string {
	if ms == nil {
		return "unmeasured"
	}
	return strconv.FormatFloat(*ms, 'f', 0, 64)
}
