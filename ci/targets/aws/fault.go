package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/infra/wait"
)

// The faults the AWS target injects into the app on its host (drill.Faulter), each with the
// host's own means and each undone by Clear and, if the drill could not, by Teardown:
//
//	kill       docker kill --signal KILL: the app's processes die at once, and with restart
//	           policy "no" nothing restarts them (connections refused)
//	hang       docker pause: the cgroup freezer stops every process; the port stays open and
//	           nothing answers (timeouts). Clear: docker unpause
//	partition  an iptables rule in raw PREROUTING drops TCP to the app's host port before
//	           docker's DNAT (timeouts; SSH is untouched). Clear deletes exactly that rule,
//	           found by its comment naming the run
//	slow       an iptables rule sends the app's replies to a netfilter queue where a small
//	           Python delayer holds every packet that carries data for Fault.Delay (responses
//	           arrive that late). Not netem: sch_netem is a module a kernel may lack (the
//	           lab's does), where this needs only netfilter's NFQUEUE and conntrack, beside
//	           docker's own rules. Clear deletes the rule and stops the delayer, which lets
//	           what it holds through
//	crashloop  restart policy "always", and a loop on the host that SIGKILLs the container's
//	           main process Fault.Uptime after each start (a crash, so the policy restarts it,
//	           with docker's growing back-off; `docker kill` would count as a manual stop).
//	           Clear stops the loop and sets restart policy "no"
//
// partition, slow and crashloop need root on the host: the remote user runs iptables and kill
// through sudo -n, so a user without passwordless sudo gets "a password is required" at once.
// The delayer and the loop end by themselves after Config.FaultLifetime at the latest.

var (
	_ drill.Faulter = (*Target)(nil)
	_ drill.Faulter = hostSet{}
)

// defaultDelayQueue is the netfilter queue number slow uses unless Config.DelayQueue says another.
const defaultDelayQueue = 2718

// Inject applies f to the app running on the host and returns once it is in effect. The fault is recorded
// before anything is applied, so Clear (and Teardown) also undo one that failed half-way.
func (n *node) inject(ctx context.Context, f drill.Fault) error {
	switch f.Kind {
	case drill.FaultKill, drill.FaultHang, drill.FaultPartition:
	case drill.FaultSlow:
		if f.Delay <= 0 {
			return fmt.Errorf("inject %s: the delay must be positive", f)
		}
	case drill.FaultCrashloop:
		if f.Uptime == 0 {
			f.Uptime = time.Second
		}
		if f.Uptime < 0 {
			return fmt.Errorf("inject %s: the uptime must not be negative", f)
		}
	default:
		return fmt.Errorf("inject %s: the aws target does not inject it (stop and bad-deploy are the drill's own)", f)
	}
	r, err := n.remote()
	if err != nil {
		return fmt.Errorf("inject %s: %w", f, err)
	}
	n.mu.Lock()
	prior := n.fault
	n.mu.Unlock()
	if prior != nil {
		if err := n.clearFault(ctx); err != nil {
			return fmt.Errorf("inject %s: %w", f, err)
		}
	}
	if f.Kind == drill.FaultPartition || f.Kind == drill.FaultSlow || f.Kind == drill.FaultCrashloop {
		// Root is checked first: without it nothing is applied, so there is nothing to clear.
		if _, err := r.Run(ctx, remote.SudoCheck(), remote.WithTimeout(n.cfg.CommandTimeout)); err != nil {
			return fmt.Errorf("inject %s: the remote user needs passwordless sudo: %w", f, err)
		}
	}
	n.mu.Lock()
	n.fault = &f
	n.mu.Unlock()
	start := time.Now()
	if err := n.apply(ctx, r, f); err != nil {
		return fmt.Errorf("inject %s: %w", f, err)
	}
	n.log.Info("fault injected", "fault", f.String(), "host", n.name(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (n *node) apply(ctx context.Context, r *remote.Runner, f drill.Fault) error {
	run := func(cmd remote.Command) error {
		_, err := r.Run(ctx, cmd, remote.WithTimeout(n.cfg.CommandTimeout))
		return err
	}
	switch f.Kind {
	case drill.FaultKill:
		if err := run(remote.Kill(ContainerName, "KILL")); err != nil {
			return err
		}
		return n.awaitExited(ctx, r)
	case drill.FaultHang:
		return run(remote.Pause(ContainerName))
	case drill.FaultPartition:
		return run(remote.Sudo(remote.InsertRule(n.partitionRule())))
	case drill.FaultSlow:
		// The delayer first: until it has bound the queue, the rule would let packets bypass it.
		d := remote.Delayer{Queue: n.cfg.DelayQueue, Delay: f.Delay, Lifetime: n.cfg.FaultLifetime, PIDFile: n.pidFile("slow")}
		return run(remote.Sequence(remote.Sudo(remote.StartDelayer(d)), remote.Sudo(remote.InsertRule(n.delayRule()))))
	case drill.FaultCrashloop:
		loop := remote.CrashLoop{Container: ContainerName, Uptime: f.Uptime, Lifetime: n.cfg.FaultLifetime, PIDFile: n.pidFile("crashloop")}
		return run(remote.Sequence(remote.UpdateRestart(ContainerName, "always"), remote.StartCrashLoop(loop)))
	}
	return nil
}

// awaitExited waits until docker reports the container's process gone.
func (n *node) awaitExited(ctx context.Context, r *remote.Runner) error {
	poll := wait.Poll{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Timeout: n.cfg.CommandTimeout}
	return poll.Run(ctx, "the app's container to exit", func(ctx context.Context) (bool, error) {
		out, err := r.Run(ctx, remote.InspectState(ContainerName), remote.WithTimeout(n.cfg.CommandTimeout))
		if err != nil {
			return noContainer(err), nil // gone altogether is exited too
		}
		s, err := remote.ParseState(out)
		if err != nil {
			return true, err
		}
		return !s.Running, nil
	})
}

// clearFault removes what inject applied; a no-op when nothing is injected, and idempotent.
func (n *node) clearFault(ctx context.Context) error {
	n.mu.Lock()
	f := n.fault
	n.mu.Unlock()
	if f == nil {
		return nil
	}
	r, err := n.remote()
	if err != nil {
		return fmt.Errorf("clear %s: %w", f, err)
	}
	start := time.Now()
	if err := n.undo(ctx, r, *f); err != nil {
		return fmt.Errorf("clear %s: %w", f, err)
	}
	n.mu.Lock()
	if n.fault == f {
		n.fault = nil
	}
	n.mu.Unlock()
	n.log.Info("fault cleared", "fault", f.String(), "host", n.name(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (n *node) undo(ctx context.Context, r *remote.Runner, f drill.Fault) error {
	run := func(cmd remote.Command) ([]byte, error) {
		return r.Run(ctx, cmd, remote.WithTimeout(n.cfg.CommandTimeout))
	}
	switch f.Kind {
	case drill.FaultHang:
		out, err := run(remote.InspectState(ContainerName))
		if err != nil {
			if noContainer(err) {
				return nil
			}
			return err
		}
		s, err := remote.ParseState(out)
		if err != nil || !s.Paused {
			return err
		}
		_, err = run(remote.Unpause(ContainerName))
		return err
	case drill.FaultPartition:
		return n.deleteRules(ctx, r, n.partitionRule())
	case drill.FaultSlow:
		// The rule first, so new packets pass; then the delayer, which lets what it holds go.
		err := n.deleteRules(ctx, r, n.delayRule())
		_, stopErr := run(remote.Sudo(remote.StopProcess(n.pidFile("slow"), remote.DelayMarker)))
		return errors.Join(err, stopErr)
	case drill.FaultCrashloop:
		// The loop first, so it kills nothing more; then no policy restarts what it killed.
		_, err := run(remote.StopProcess(n.pidFile("crashloop"), remote.CrashLoopMarker))
		if _, uerr := run(remote.UpdateRestart(ContainerName, "no")); uerr != nil && !noContainer(uerr) {
			err = errors.Join(err, uerr)
		}
		return err
	}
	return nil // kill: nothing stays applied
}

// deleteRules deletes every copy of rule (found by its comment), leaving other rules alone.
func (n *node) deleteRules(ctx context.Context, r *remote.Runner, rule remote.Rule) error {
	out, err := r.Run(ctx, remote.Sudo(remote.ListRules(rule.Table, rule.Chain)), remote.WithTimeout(n.cfg.CommandTimeout))
	if err != nil {
		return err
	}
	for range remote.CountRules(out, rule.Comment) {
		if _, err := r.Run(ctx, remote.Sudo(remote.DeleteRule(rule)), remote.WithTimeout(n.cfg.CommandTimeout)); err != nil {
			return err
		}
	}
	return nil
}

func (n *node) partitionRule() remote.Rule {
	return remote.PartitionRule(n.cfg.HTTPPort, n.cfg.Run.ID)
}

func (n *node) delayRule() remote.Rule {
	return remote.DelayRule(n.cfg.HTTPPort, n.cfg.DelayQueue, n.cfg.Run.ID)
}

// pidFile is where a fault's process records its pid, in the remote user's home.
func (n *node) pidFile(kind string) string {
	return "." + remote.FaultMarker + "-" + kind + "-" + n.cfg.Run.ID + ".pid"
}

// noContainer reports docker's answer for a container that does not exist.
func noContainer(err error) bool {
	var exit *remote.ExitError
	return errors.As(err, &exit) && strings.Contains(exit.Stderr, "No such container")
}

// Inject applies f to every host of the run (a fleet's faulty hosts alone: Faulty).
func (t *Target) Inject(ctx context.Context, f drill.Fault) error { return t.all().Inject(ctx, f) }

// Clear removes what Inject applied on every host; idempotent.
func (t *Target) Clear(ctx context.Context) error { return t.all().Clear(ctx) }

// Inject applies f to each host of the set at once.
func (s hostSet) Inject(ctx context.Context, f drill.Fault) error {
	return s.nodes.each(ctx, func(ctx context.Context, n *node) error { return n.inject(ctx, f) })
}

// Clear removes the fault from each host of the set.
func (s hostSet) Clear(ctx context.Context) error {
	return s.nodes.each(ctx, func(ctx context.Context, n *node) error { return n.clearFault(ctx) })
}
