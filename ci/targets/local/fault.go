package local

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/pipeline"
)

// The faults act on the running container as this machine sees it: hack/engine.sh runs the
// engine here (its own mount and network namespace, this PID namespace), so the app's
// processes are in /proc, its cgroup is under the cgroup v2 mount and its network namespace is
// /proc/PID/ns/net. The container is found by its instanceEnv value, never by version alone.
//
//	kill      cgroup.kill (SIGKILL to every process at once), then, as a container runtime does
//	          when a container exits, the target ends its session: the tunnel's listener goes
//	          and probes are refused (the v0.18.10 engine does not notice a dead service: its
//	          tunnel would keep accepting and probes would hang).
//	hang      cgroup.freeze=1 until cgroup.events says frozen; the tunnel still accepts, nothing
//	          answers. Clear thaws.
//	partition iptables -I INPUT 1 -p tcp --dport 5000 ... -j DROP in the app's namespace.
//	          Clear deletes exactly that rule.
//	slow      a REDIRECT of new connections to port 5000 to a proxy listening in the app's
//	          namespace that hands every response chunk on Delay late (netem is not built into
//	          every kernel; this one works wherever iptables does). Clear deletes the rule and
//	          closes the proxy.
//	crashloop the running container is killed as above, then a restart loop starts the same
//	          image in a fresh session, kills it Uptime after it first answers /health (so every
//	          start serves for Uptime, however long the app takes to boot), and so on until
//	          Clear, which ends the loop and leaves nothing running.

// injected is the fault in effect.
type injected struct {
	fault drill.Fault
	c     *container // the container it was applied to; nil for crashloop
	// undo removes the fault (Clear); idempotent.
	undo func(ctx context.Context) error
	// halt, if set, runs before Stop closes the session, so the version goes down without ever
	// answering again (kill frozen processes rather than thaw them; end the restart loop).
	halt func(ctx context.Context) error
}

// findWait bounds the search for a container that Deploy has started (it runs by then).
const findWait = 5 * time.Second

// Inject applies f to the running version and returns once the fault is in effect.
func (t *Target) Inject(ctx context.Context, f drill.Fault) error {
	if err := t.inject(ctx, f); err != nil {
		return fmt.Errorf("inject %s: %w", f, err)
	}
	return nil
}

func (t *Target) inject(ctx context.Context, f drill.Fault) error {
	switch f.Kind {
	case drill.FaultKill, drill.FaultHang, drill.FaultPartition, drill.FaultSlow, drill.FaultCrashloop:
	case drill.FaultStop, drill.FaultBadDeploy:
		return fmt.Errorf("the drill runs %s with Stop and Deploy, not the target", f.Kind)
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.Kind == drill.FaultSlow && f.Delay <= 0 {
		return errors.New("slow needs a delay above 0")
	}
	if f.Kind == drill.FaultCrashloop && f.Uptime <= 0 {
		f.Uptime = time.Second
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fault != nil {
		return fmt.Errorf("%s is injected already; clear it first", t.fault.fault)
	}
	d := t.running
	if d == nil {
		return errors.New("no version is running")
	}
	c, err := findContainer(ctx, d.instance, findWait)
	if err != nil {
		return err
	}
	switch f.Kind {
	case drill.FaultKill:
		defer c.close()
		return t.crashLocked(ctx, c)
	case drill.FaultCrashloop:
		defer c.close()
		if err := t.crashLocked(ctx, c); err != nil {
			return err
		}
		t.fault = t.startCrashloop(f, d.image)
		return nil
	}
	in := &injected{fault: f, c: c}
	switch f.Kind {
	case drill.FaultHang:
		err = t.hang(ctx, in)
	case drill.FaultPartition:
		err = partition(ctx, in)
	case drill.FaultSlow:
		err = slow(ctx, in)
	}
	if err != nil {
		return errors.Join(err, c.close())
	}
	t.fault = in
	return nil
}

// Clear removes what Inject applied; a no-op with nothing injected. For crashloop it also ends
// the session the loop started last: nothing runs afterwards.
func (t *Target) Clear(ctx context.Context) error {
	t.mu.Lock()
	f := t.fault
	t.mu.Unlock()
	if f == nil {
		return nil
	}
	// The fault stays recorded until it is gone: no Deploy or Inject meanwhile.
	if err := f.undo(ctx); err != nil {
		return fmt.Errorf("clear %s: %w", f.fault, err)
	}
	t.mu.Lock()
	if t.fault == f {
		t.fault = nil
	}
	t.mu.Unlock()
	if f.c != nil {
		if err := f.c.close(); err != nil {
			return fmt.Errorf("clear %s: close the app's network namespace: %w", f.fault, err)
		}
	}
	return nil
}

// crashLocked SIGKILLs c's processes, then ends the running session as a runtime drops a dead
// container's port forwarding: the listener goes, probes are refused. Called with t.mu held.
func (t *Target) crashLocked(ctx context.Context, c *container) error {
	killErr := c.kill(ctx)
	if err := t.closeRunningLocked(); err != nil {
		return errors.Join(killErr, fmt.Errorf("end the session of the killed container: %w", err))
	}
	return killErr
}

func (t *Target) hang(ctx context.Context, in *injected) error {
	if err := in.c.freeze(ctx, true); err != nil {
		return errors.Join(err, in.c.freeze(context.WithoutCancel(ctx), false))
	}
	in.undo = func(ctx context.Context) error { return in.c.freeze(ctx, false) }
	// A stop of a hung version kills it where it hangs (fatal signals reach frozen processes in
	// cgroup v2), rather than thawing it for a moment of answers.
	in.halt = in.c.kill
	return nil
}

func partition(ctx context.Context, in *injected) error {
	if err := needCommands("iptables", "nsenter"); err != nil {
		return err
	}
	rule := func(op ruleOp) []string { return dropPort(op, pipeline.AppPort) }
	if _, err := runInNetns(ctx, in.c.netns, inNetns(rule(ruleInsert)...)); err != nil {
		return fmt.Errorf("drop the app's port: %w", err)
	}
	in.undo = once(func(ctx context.Context) error {
		return deleteRule(ctx, in.c, "filter", "INPUT", ruleComment+":partition", rule(ruleDelete))
	})
	in.halt = killThenUndo(in)
	return nil
}

// killThenUndo stops a partitioned or slowed version: its processes die first, so nothing
// answers, then the rule goes, so the tunnel's pending connects (their SYNs dropped until now)
// are refused at once instead of retrying for a minute and holding the session's close.
func killThenUndo(in *injected) func(context.Context) error {
	return func(ctx context.Context) error { return errors.Join(in.c.kill(ctx), in.undo(ctx)) }
}

// once makes an undo idempotent: the stop's halt and a later Clear may both call it.
func once(undo func(context.Context) error) func(context.Context) error {
	var done bool
	var err error
	return func(ctx context.Context) error {
		if !done {
			done, err = true, undo(ctx)
		}
		return err
	}
}

func slow(ctx context.Context, in *injected) error {
	if err := needCommands("iptables", "nsenter"); err != nil {
		return err
	}
	proxy, err := startDelayProxy(in.c.netns, pipeline.AppPort, in.fault.Delay)
	if err != nil {
		return err
	}
	rule := func(op ruleOp) []string { return redirectPort(op, pipeline.AppPort, proxy.Port()) }
	if _, err := runInNetns(ctx, in.c.netns, inNetns(rule(ruleInsert)...)); err != nil {
		return errors.Join(fmt.Errorf("redirect the app's port to the delaying proxy: %w", err), proxy.Close())
	}
	in.undo = once(func(ctx context.Context) error {
		// The rule first: new connections go straight to the app again; then the proxy and the
		// connections it still holds.
		return errors.Join(
			deleteRule(ctx, in.c, "nat", "PREROUTING", ruleComment+":slow", rule(ruleDelete)),
			proxy.Close())
	})
	in.halt = killThenUndo(in)
	return nil
}

// deleteRule deletes deploydrill's rule (marked comment) until the chain lists it no more;
// bounded, since each delete removes one copy.
func deleteRule(ctx context.Context, c *container, table, chain, comment string, del []string) error {
	for range 3 {
		out, err := runInNetns(ctx, c.netns, inNetns(listRules(table, chain)...))
		if err != nil {
			return fmt.Errorf("list %s %s: %w", table, chain, err)
		}
		if !hasRule(string(out), comment) {
			return nil
		}
		if _, err := runInNetns(ctx, c.netns, inNetns(del...)); err != nil {
			return fmt.Errorf("delete the %s rule: %w", comment, err)
		}
	}
	return fmt.Errorf("the %s rule is still listed in %s %s after 3 deletes", comment, table, chain)
}

// hasRule reports whether `iptables -S` output lists a rule with comment.
func hasRule(rules, comment string) bool {
	for line := range strings.SplitSeq(rules, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "--comment" && strings.Trim(f[i+1], `"`) == comment {
				return true
			}
		}
	}
	return false
}

func needCommands(names ...string) error {
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Errorf("this fault needs %s (Debian: iptables, util-linux): %w", name, err)
		}
	}
	return nil
}
