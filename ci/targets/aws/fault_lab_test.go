package aws_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
	"github.com/deploydrill/deploydrill/ci/targets/aws"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/infra/wait"
	"github.com/deploydrill/deploydrill/internal/retention"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
	"github.com/deploydrill/deploydrill/internal/testenv/lab"
	"github.com/deploydrill/deploydrill/internal/testenv/testimage"
)

// labIndex keeps this package's lab instances apart from other packages' (awslab 10+, ci 40+).
const labIndex = 25

// TestFaultsInTheLab injects each fault the AWS target owns into a real app on a lab instance
// (booted through the AWS double, provisioned over SSH as the AMI's default user, with sudo),
// and checks, apart from each other, what the drill's probes see and what the host really
// holds (iptables, netfilter queues, the cgroup freezer, docker's restart policy and count,
// the fault's own processes). Clear must leave nothing and the app must answer again; then the
// fault is injected once more and Teardown, without a Clear (as after SIGINT), must have cleared
// it before the host was terminated.
func TestFaultsInTheLab(t *testing.T) {
	l := awslab.Start(t, awslab.Options{WithoutEngine: true, RemoteUser: ec2.DefaultUser, FirstIndex: labIndex})
	tests := []struct {
		name  string
		fault drill.Fault
		// during checks the symptom and the ground truth while the fault is in effect.
		during func(t *testing.T, h *labHost)
		// redeploy: after Clear the app is down for good and only a new deploy brings it back.
		redeploy bool
	}{
		{"kill: SIGKILL of the app's processes, nothing restarts them, probes are refused",
			drill.Fault{Kind: drill.FaultKill}, func(t *testing.T, h *labHost) {
				c := h.container(t)
				if c.Running || c.ExitCode != 137 || c.RestartPolicy != "no" || c.RestartCount != 0 {
					t.Errorf("container after kill: %+v, want exited by SIGKILL (137), restart policy no, not restarted", c)
				}
				if procs := h.processesOf(t, h.mainPID); len(procs) > 0 {
					t.Errorf("the app's main process %d still runs: %v", h.mainPID, procs)
				}
				h.expectOutcomes(t, 5, probe.Refused, probe.Reset)
			}, true},
		{"hang: the cgroup freezer stops the app, the port stays open, probes time out",
			drill.Fault{Kind: drill.FaultHang}, func(t *testing.T, h *labHost) {
				c := h.container(t)
				if !c.Paused || !c.Frozen || c.Pid != h.mainPID {
					t.Errorf("container after hang: %+v, want docker paused and its cgroup frozen, same process %d", c, h.mainPID)
				}
				h.expectConnects(t)
				h.expectOutcomes(t, 3, probe.Timeout)
			}, false},
		{"partition: a marked rule drops the app's port on the host, probes time out, ssh works",
			drill.Fault{Kind: drill.FaultPartition}, func(t *testing.T, h *labHost) {
				rules := h.state(t).Rules
				want := "-t raw -A PREROUTING -p tcp -m tcp --dport 80 -m comment --comment \"deploydrill-fault partition run " + h.runID + "\" -j DROP"
				if !slices.Equal(rules, []string{want}) {
					t.Errorf("rules %q, want only %q", rules, want)
				}
				if c := h.container(t); !c.Running || c.Paused || c.Pid != h.mainPID {
					t.Errorf("the partition touched the app: %+v", c)
				}
				h.expectOutcomes(t, 3, probe.Timeout)
			}, false},
		{"slow: the app's replies are held for the delay, probes time out or are late",
			drill.Fault{Kind: drill.FaultSlow, Delay: 1500 * time.Millisecond}, func(t *testing.T, h *labHost) {
				s := h.state(t)
				if len(s.Rules) != 1 || !strings.Contains(s.Rules[0], "-j NFQUEUE --queue-num 2718 --queue-bypass") ||
					!strings.Contains(s.Rules[0], "slow run "+h.runID) {
					t.Errorf("rules %q, want the run's one NFQUEUE rule", s.Rules)
				}
				if !slices.Equal(s.Queues, []int{2718}) {
					t.Errorf("bound queues %v, want 2718", s.Queues)
				}
				if len(s.Processes) != 1 || s.Processes[0].UID != 0 || !strings.Contains(s.Processes[0].Cmdline, remote.DelayMarker) {
					t.Errorf("processes %v, want the delayer, as root", s.Processes)
				}
				h.expectOutcomes(t, 3, probe.Timeout) // the prober's timeout is 500ms
				late := probe.New(5*time.Second).Probe(t.Context(), h.endpoint, h.version)
				if late.Outcome != probe.OK || late.Latency < 1500*time.Millisecond || late.Latency > 3*time.Second {
					t.Errorf("a patient probe: %s after %s, want ok after about 1.5s", late.Outcome, late.Latency)
				}
			}, false},
		{"crashloop: the app is killed after each start and restarted, probes flap",
			// Longer than the ~1 s a restarted container is unreachable (the host re-resolves its
			// address by ARP, retried after 1 s), or no probe would ever see it answer.
			drill.Fault{Kind: drill.FaultCrashloop, Uptime: 2 * time.Second}, func(t *testing.T, h *labHost) {
				h.expectFlapping(t)
				restarts := h.awaitRestarts(t, 1)
				c := h.container(t)
				if c.RestartPolicy != "always" || c.Pid == h.mainPID {
					t.Errorf("container %+v after %d restarts, want policy always and a new process", c, restarts)
				}
				s := h.state(t)
				if len(s.Processes) != 1 || !strings.Contains(s.Processes[0].Cmdline, remote.CrashLoopMarker) || s.Processes[0].UID == 0 {
					t.Errorf("processes %v, want the loop, as the remote user", s.Processes)
				}
			}, true},
	}
	// Each case boots a host of its own: side by side, then the lab must hold nothing.
	t.Run("each fault", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				h := bootLabHost(t, l, "f-"+string(tt.fault.Kind))
				ctx := t.Context()
				if err := h.target.Inject(ctx, tt.fault); err != nil {
					t.Fatal(err)
				}
				injected := time.Now()
				tt.during(t, h)

				if err := h.target.Clear(ctx); err != nil {
					t.Fatal(err)
				}
				if left := h.state(t).Clean(); len(left) > 0 {
					t.Errorf("Clear left %q", left)
				}
				if err := h.target.Clear(ctx); err != nil {
					t.Errorf("a second Clear: %v", err)
				}
				if tt.redeploy {
					h.deploy(t)
				}
				h.expectOutcomes(t, 2, probe.OK)

				// Once more, and this time only Teardown clears it.
				if err := h.target.Inject(ctx, tt.fault); err != nil {
					t.Fatal(err)
				}
				if tt.fault.Kind == drill.FaultCrashloop {
					h.awaitRestarts(t, 1)
				}
				if tt.fault.Kind != drill.FaultKill && len(h.state(t).Clean()) == 0 {
					t.Error("the injected fault leaves no trace State sees: the check after teardown proves nothing")
				}
				h.teardown(t, true)
				t.Logf("%s: fault in effect %s after boot, whole case %s", tt.fault, injected.Sub(start).Round(time.Millisecond),
					time.Since(start).Round(time.Millisecond))
			})
		}
	})
	l.AssertNothingLeft(t)
}

// TestFaultNeedsSudo: a remote user without passwordless sudo (the user-data grants it, but an
// AMI or a user set up otherwise may not) gets a clear error for the faults that need root,
// and the host is left as it was.
func TestFaultNeedsSudo(t *testing.T) {
	l := awslab.Start(t, awslab.Options{WithoutEngine: true, RemoteUser: "drill", WithoutSudo: true, FirstIndex: labIndex})
	h := bootLabHost(t, l, "f-nosudo")
	for _, f := range []drill.Fault{{Kind: drill.FaultPartition}, {Kind: drill.FaultSlow, Delay: time.Second}, {Kind: drill.FaultCrashloop}} {
		err := h.target.Inject(t.Context(), f)
		if err == nil || !strings.Contains(err.Error(), "a password is required") || !strings.Contains(err.Error(), "sudo -n") {
			t.Errorf("inject %s without sudo: %v, want sudo's refusal", f, err)
		}
	}
	if left := h.state(t).Clean(); len(left) > 0 {
		t.Errorf("failed injections left %q", left)
	}
	h.expectOutcomes(t, 2, probe.OK)
	h.teardown(t, false)
	l.AssertNothingLeft(t)
}

// labHost is one target provisioned on a lab instance with the app deployed.
type labHost struct {
	lab      *awslab.Lab
	target   *aws.Target
	inst     *awslab.Instance
	runID    string
	image    drill.Image
	version  string
	endpoint string
	mainPID  int // the app's main process as deployed
	prober   *probe.Prober
	torn     bool
}

func bootLabHost(t *testing.T, l *awslab.Lab, runID string) *labHost {
	t.Helper()
	testenv.Slot(t, 1) // a host booted and faulted: one of the machine's heavy tests at a time
	ctx := t.Context()
	before := len(l.Instances())
	tg, err := aws.New(aws.Config{
		AWS:        l.Double.Config(),
		Run:        runtag.Run{ID: runID, App: "app", GitSHA: "abc1234", CreatedAt: time.Now(), Lifetime: 30 * time.Minute},
		Host:       ec2.HostSpec{SSHCIDR: netip.MustParsePrefix(awslab.SSHCIDR), User: l.RemoteUser()},
		Repository: "app-" + runID,
		Ephemeral:  true,
		SSHReady:   time.Minute,
		DockerPoll: wait.Poll{Initial: 100 * time.Millisecond, Max: time.Second, Timeout: time.Minute},
		Log:        slog.New(slog.NewTextHandler(t.Output(), nil)),
		Timing:     labTiming(),
		DetectIP: func(context.Context) (netip.Addr, error) {
			return netip.Addr{}, errors.New("the lab passes an ssh cidr: nothing may look up a public ip")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &labHost{lab: l, target: tg, runID: runID, version: "v-" + runID, prober: probe.New(500 * time.Millisecond)}
	t.Cleanup(func() {
		if !h.torn {
			h.teardown(t, false)
		}
	})
	dest, err := tg.Registry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.image = pushImage(t, l, dest.Repository, h.version)
	if err := tg.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	// Cases boot hosts side by side: this run's is the newest one at the target's address (an
	// address comes back with a lab index another run gave up).
	h.endpoint = tg.Endpoint()
	insts := l.Instances()
	for i := len(insts) - 1; i >= before && h.inst == nil; i-- {
		if u, err := url.Parse(h.endpoint); err == nil && u.Hostname() == insts[i].Addr {
			h.inst = insts[i]
		}
	}
	if h.inst == nil {
		t.Fatalf("no lab instance booted since the test began answers at %s", h.endpoint)
	}
	h.deploy(t)
	return h
}

// pushImage pushes the test image reporting version to repository (host/name) and resolves it.
func pushImage(t *testing.T, l *awslab.Lab, repository, version string) drill.Image {
	t.Helper()
	img, err := testimage.Build(t.Context(), version)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(repository+":"+version, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcr.Write(ref, img, ggcr.WithContext(t.Context()), ggcr.WithAuth(&authn.Basic{Username: "AWS", Password: l.RegistryPassword()})); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return drill.Image{Ref: repository + "@" + digest.String(), Tag: version, Version: version, Digest: digest.String()}
}

// deploy (re)deploys the image and waits until it answers.
func (h *labHost) deploy(t *testing.T) {
	t.Helper()
	if err := h.target.Deploy(t.Context(), h.image); err != nil {
		t.Fatal(err)
	}
	h.awaitOutcome(t, probe.OK)
	h.mainPID = h.container(t).Pid
}

func (h *labHost) container(t *testing.T) lab.Container {
	t.Helper()
	c, err := h.inst.Lab.Container(t.Context(), aws.ContainerName)
	if err != nil || !c.Exists {
		t.Fatalf("container %s: %+v, %v", aws.ContainerName, c, err)
	}
	return c
}

func (h *labHost) state(t *testing.T) lab.State {
	t.Helper()
	s, err := h.inst.Lab.State(t.Context(), remote.FaultMarker)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// processesOf lists the lab's live processes whose pid is pid.
func (h *labHost) processesOf(t *testing.T, pid int) []lab.Process {
	t.Helper()
	all, err := h.inst.Lab.Processes("")
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(p lab.Process) bool { return p.PID != pid })
}

// expectOutcomes probes n times in a row and wants each outcome to be one of want.
func (h *labHost) expectOutcomes(t *testing.T, n int, want ...probe.Outcome) {
	t.Helper()
	for i := range n {
		s := h.prober.Probe(t.Context(), h.endpoint, h.version)
		if !slices.Contains(want, s.Outcome) {
			t.Errorf("probe %d: %s after %s (%s), want one of %v", i+1, s.Outcome, s.Latency.Round(time.Millisecond), s.Err, want)
		}
	}
}

// awaitOutcome probes (for up to 30 s) until one probe sees want.
func (h *labHost) awaitOutcome(t *testing.T, want probe.Outcome) {
	t.Helper()
	var last probe.Sample
	err := wait.Poll{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Timeout: 30 * time.Second}.Run(t.Context(),
		fmt.Sprintf("a probe of %s to be %s", h.endpoint, want), func(ctx context.Context) (bool, error) {
			last = h.prober.Probe(ctx, h.endpoint, h.version)
			return last.Outcome == want, nil
		})
	if err != nil {
		t.Fatalf("%v (last: %s %s)", err, last.Outcome, last.Err)
	}
}

// expectConnects: a frozen app's port still takes connections (the kernel answers the handshake).
func (h *labHost) expectConnects(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(h.endpoint, "http://"), time.Second)
	if err != nil {
		t.Errorf("connect to the frozen app: %v, want the port open", err)
		return
	}
	c.Close()
}

// awaitRestarts waits (up to 30 s) until the restart policy has restarted the app n times.
func (h *labHost) awaitRestarts(t *testing.T, n int) int {
	t.Helper()
	var c lab.Container
	err := wait.Poll{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Timeout: 30 * time.Second}.Run(t.Context(),
		fmt.Sprintf("%d restarts of the app", n), func(ctx context.Context) (bool, error) {
			var err error
			c, err = h.inst.Lab.Container(ctx, aws.ContainerName)
			return err == nil && c.RestartCount >= n, err
		})
	if err != nil {
		t.Fatalf("%v (container %+v)", err, c)
	}
	return c.RestartCount
}

// expectFlapping probes every 100 ms for up to 20 s and wants both answers and failures
// (refused or reset: the app gone between a kill and its restart; timeouts are seen too, while
// the restarted container's address is resolved again).
func (h *labHost) expectFlapping(t *testing.T) {
	t.Helper()
	seen := map[probe.Outcome]int{}
	failed := func() int { return seen[probe.Refused] + seen[probe.Reset] }
	deadline := time.Now().Add(20 * time.Second)
	for (seen[probe.OK] == 0 || failed() == 0) && time.Now().Before(deadline) {
		o := h.prober.Probe(t.Context(), h.endpoint, h.version).Outcome
		if !slices.Contains([]probe.Outcome{probe.OK, probe.Refused, probe.Reset, probe.Timeout}, o) {
			t.Errorf("a crashlooping app answered %s", o)
		}
		seen[o]++
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if seen[probe.OK] == 0 || failed() == 0 {
		t.Errorf("probe outcomes %v, want both ok and refused/reset", seen)
	}
	t.Logf("crashloop outcomes until both were seen: %v", seen)
}

// teardown runs the target's teardown and checks it removed everything; withFault says a fault
// was still injected, which the first step must have cleared before the host was terminated.
func (h *labHost) teardown(t *testing.T, withFault bool) {
	t.Helper()
	h.torn = true
	ctx, cancel := teardown.FreshContext(t.Context(), 2*time.Minute)
	defer cancel()
	td, err := h.target.Teardown(ctx, retention.Policy{})
	if err != nil || len(td.Left) > 0 {
		t.Errorf("teardown: %v, left %v", err, td.Left)
	}
	if cleared := len(td.Steps) > 0 && td.Steps[0].Name == "clear fault"; cleared != withFault {
		t.Errorf("teardown steps %+v: a clear fault step first is %v, want %v", td.Steps, cleared, withFault)
	} else if withFault && td.Steps[0].Error != "" {
		t.Errorf("teardown's clear fault: %s", td.Steps[0].Error)
	}
	if h.inst == nil {
		return
	}
	final, err := h.inst.AtTermination()
	if err != nil {
		t.Fatal(err)
	}
	if left := final.Clean(); len(left) > 0 {
		t.Errorf("the host held at termination: %q", left)
	}
}

// labTiming is DefaultTiming with waits sized for a machine, not a cloud.
func labTiming() ec2.Timing {
	p := func(timeout time.Duration) wait.Poll {
		return wait.Poll{Initial: 100 * time.Millisecond, Max: time.Second, Timeout: timeout}
	}
	return ec2.Timing{Running: p(30 * time.Second), Terminated: p(30 * time.Second),
		GroupDelete: p(30 * time.Second), Visibility: p(30 * time.Second)}
}
