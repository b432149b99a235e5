package awslab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/lab"
)

// Instance is one EC2 instance as the lab runs it: a netns lab booted from its user-data.
type Instance struct {
	ID        string        // the EC2 instance id
	Name      string        // the lab's name; its network namespace is NetnsPath
	Addr      string        // the "public IP" the double handed out
	User      string        // the login user user-data created
	PinnedKey ssh.PublicKey // the host key user-data carried (nil when it carried none)
	Presented ssh.PublicKey // the host key sshd actually presents
	Lab       *lab.Instance

	index      int
	netns      string
	registryLn net.Listener
	lab        *Lab
	refuse     *time.Timer

	terminating bool          // guarded by lab.mu
	down        chan struct{} // closed once the lab is removed

	mu         sync.Mutex
	final      *lab.State // read as EC2 began terminating the instance
	finalErr   error
	refusing   bool
	refused    int
	sgRules    string // the security group rules in force
	closed     bool
	closedLogs string
}

// NetnsPath is the instance's network namespace.
func (in *Instance) NetnsPath() string { return in.netns }

// Refused is how many SSH connection attempts the instance refused while "booting".
func (in *Instance) Refused() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.refused
}

// Closed reports whether the instance was shut down (terminated, or the lab closed).
func (in *Instance) Closed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.closed
}

// AtTermination is the instance's fault state (lab.State, for remote.FaultMarker) as it was
// when EC2 began terminating it, before its lab was removed: what the run's teardown left on
// the host (a rule, a bound queue, a frozen container, a restart policy, a fault's process). It
// waits (up to a minute) for the termination under way to finish, and fails for an instance
// that was never terminated.
func (in *Instance) AtTermination() (lab.State, error) {
	if !in.isTerminating() {
		return lab.State{}, fmt.Errorf("instance %s was not terminated", in.ID)
	}
	select {
	case <-in.down:
	case <-time.After(time.Minute):
		return lab.State{}, fmt.Errorf("instance %s still shutting down after a minute", in.ID)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.final == nil {
		return lab.State{}, fmt.Errorf("instance %s: no state read at termination: %w", in.ID, in.finalErr)
	}
	return *in.final, nil
}

// recordFinal reads the fault state before the lab goes.
func (in *Instance) recordFinal(ctx context.Context) {
	st, err := in.Lab.State(ctx, remote.FaultMarker)
	in.mu.Lock()
	defer in.mu.Unlock()
	if err != nil {
		in.finalErr = err
		return
	}
	in.final = &st
}

// boot is the double's OnRunInstances: it starts a lab configured from the user-data and
// returns its address as the public IP. An error fails RunInstances.
func (l *Lab) boot(id string, userData []byte) (string, error) {
	bc, err := parseUserData(userData)
	if err != nil {
		l.logf("RunInstances %s refused: %v", id, err)
		return "", err
	}
	hostKey := bc.hostKeyPEM
	if l.opts.WrongHostKey {
		if _, hostKey, err = testenv.NewSSHKey(); err != nil {
			return "", err
		}
	}
	inst, index, err := l.startLab(lab.Config{HostKeyPEM: hostKey, AuthorizedKeys: bc.authorizedKeys, User: bc.user, Sudo: bc.sudo && !l.opts.WithoutSudo})
	if err != nil {
		l.logf("RunInstances %s: %v", id, err)
		return "", err
	}
	in := &Instance{ID: id, Name: inst.Name(), Addr: inst.Addr(), User: bc.user, Presented: inst.HostKey(), Lab: inst,
		index: index, netns: "/run/netns/ddlab-" + inst.Name(), lab: l, down: make(chan struct{})}
	if len(bc.hostKeyPEM) > 0 {
		signer, _ := ssh.ParsePrivateKey(bc.hostKeyPEM) // parseUserData checked it
		in.PinnedKey = signer.PublicKey()
	}
	if err := in.attach(); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return "", errors.Join(err, in.shutdown(ctx))
	}
	l.mu.Lock()
	l.instances = append(l.instances, in)
	l.mu.Unlock()
	l.logf("instance %s booted as lab %s at %s (user %s, sudo %v, ssh refused for %s, wrong host key %v, failing pulls %v)",
		id, in.Name, in.Addr, in.User, bc.sudo, l.opts.SSHRefusedFor, l.opts.WrongHostKey, l.opts.FailPulls)
	return in.Addr, nil
}

// attach serves the registry inside the instance and starts refusing SSH if asked to.
func (in *Instance) attach() error {
	if _, err := os.Stat(in.netns); err != nil {
		return fmt.Errorf("lab %s: network namespace: %w", in.Name, err)
	}
	ln, err := in.lab.registry.serveInNetns(in.netns)
	if err != nil {
		return err
	}
	in.registryLn = ln
	if d := in.lab.opts.SSHRefusedFor; d > 0 {
		if _, err := iptables(in.lab.ctx, in.netns, append([]string{"-I"}, rejectSSH...)...); err != nil {
			return fmt.Errorf("lab %s: refuse ssh: %w", in.Name, err)
		}
		in.refusing = true
		in.refuse = time.AfterFunc(d, func() {
			if err := in.allowSSH(in.lab.ctx); err != nil {
				in.lab.logf("instance %s: %v", in.ID, err)
			}
		})
	}
	return nil
}

// rejectSSH answers SSH connections with a TCP reset: "connection refused", as a host whose
// sshd is not listening yet.
var rejectSSH = []string{"INPUT", "-p", "tcp", "--dport", "22", "-j", "REJECT", "--reject-with", "tcp-reset"}

// allowSSH counts the refused attempts and lifts the refusal ("sshd is up").
func (in *Instance) allowSSH(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.refusing || in.closed {
		return nil
	}
	out, err := iptables(ctx, in.netns, "-S", "INPUT", "-v")
	if err != nil {
		return fmt.Errorf("count refused ssh connections: %w", err)
	}
	in.refused = countRejected(out)
	if _, err := iptables(ctx, in.netns, append([]string{"-D"}, rejectSSH...)...); err != nil {
		return fmt.Errorf("allow ssh: %w", err)
	}
	in.refusing = false
	return nil
}

// countRejected reads the packet counter of the SSH REJECT rule from `iptables -S INPUT -v`
// ("-A INPUT -p tcp -m tcp --dport 22 -c 3 180 -j REJECT ..."): one SYN per refused attempt.
func countRejected(rules string) int {
	for _, line := range strings.Split(rules, "\n") {
		f := strings.Fields(line)
		if !strings.Contains(line, "--dport 22") || !strings.Contains(line, "REJECT") {
			continue
		}
		for i := range f {
			if f[i] == "-c" && i+1 < len(f) {
				var n int
				_, _ = fmt.Sscan(f[i+1], &n)
				return n
			}
		}
	}
	return 0
}

// shutdown stops serving the registry inside the instance and removes the lab. Idempotent.
func (in *Instance) shutdown(ctx context.Context) error {
	if in.refuse != nil {
		in.refuse.Stop()
	}
	in.lab.unlinkInstance(ctx, in) // the load balancers' links, before the namespace goes
	if err := in.allowSSH(ctx); err != nil {
		in.lab.logf("instance %s: %v", in.ID, err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil
	}
	if in.registryLn != nil {
		in.lab.registry.Stop(in.registryLn)
	}
	in.closedLogs = in.Lab.Logs()
	if err := in.Lab.Close(ctx); err != nil {
		return fmt.Errorf("instance %s: %w", in.ID, err)
	}
	in.closed = true
	close(in.down)
	releaseIndex(in.index)
	return nil
}

func (in *Instance) isTerminating() bool {
	in.lab.mu.Lock()
	defer in.lab.mu.Unlock()
	return in.terminating
}

func (in *Instance) logs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return in.closedLogs
	}
	return in.Lab.Logs()
}

// afterOp applies security groups to the instances (see firewall.go), and shuts down the labs of
// instances EC2 now reports shutting down or terminated, in the background as a real instance
// powers off after TerminateInstances has answered.
func (l *Lab) afterOp(op string, _ *http.Request) {
	switch op {
	case "ec2:RunInstances", "ec2:AuthorizeSecurityGroupIngress":
		l.syncBalancers() // links a new instance to the load balancers
		l.syncFirewalls()
		return
	case "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:DeleteLoadBalancer",
		"elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener":
		l.syncBalancers()
		l.syncFirewalls() // a load balancer joins or leaves its security groups
		return
	case "ec2:TerminateInstances", "ec2:DescribeInstances":
	default:
		return
	}
	gone := map[string]bool{}
	for _, x := range l.Double.Instances() {
		gone[x.ID] = x.State == "shutting-down" || x.State == "terminated"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, in := range l.instances {
		if !gone[in.ID] || in.terminating {
			continue
		}
		in.terminating = true
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			in.recordFinal(ctx)
			if err := in.shutdown(ctx); err != nil {
				l.logf("terminate: %v", err)
				return
			}
			l.logf("instance %s terminated: lab %s removed in %s", in.ID, in.Name, time.Since(start).Round(time.Millisecond))
		}()
	}
}

// iptables runs iptables inside the instance's network namespace (its rules stay there).
func iptables(ctx context.Context, netns string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netns, "--", "iptables", "-w", "5"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
