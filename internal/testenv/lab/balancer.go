package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A Balancer is a load balancer's data plane on this machine: Debian's HAProxy (master-worker)
// in a network namespace of its own, joined to the host by a veth, where clients reach it at
// Addr, and to each instance it serves by a veth of its own (Link), over which it reaches the
// instance's address. It stays within the lab's addresses: nothing routes beyond the host end
// of its veths.
//
// Addresses, for balancer index k (0..MaxBalancerIndex), outside the instances' 10.213.0.0/16:
//
//	10.214.k.1/30            host end of the front veth (where clients come from)
//	10.214.k.2/30            the balancer (its listeners: Addr)
//	10.215.k.(4i+1)/30       its end of the link to lab instance i (what the instance sees as
//	                         the source of requests and health checks: SourcePrefix)
//	10.215.k.(4i+2)/30       the instance's end, elb<k> in the instance's namespace
//
// HAProxy follows Apply: a change of listeners or target groups rewrites the config and
// reloads the master (the new worker takes the listening sockets from the old one, which
// finishes its connections: nothing is dropped; server states carry over through HAProxy's
// server-state file); a change of targets goes through the runtime API (add server, drain,
// remove), so health states and connections stay as they are.

// MaxBalancerIndex is the highest balancer index.
const MaxBalancerIndex = 255

// BalancerConfig describes one balancer. Name and Index are required.
type BalancerConfig struct {
	// Name is the lab name ([a-z][a-z0-9-]{0,11}): the netns is ddlab-NAME, as for an Instance,
	// so one left by a killed run is removed by the next Start of that name (or RemoveStale).
	Name string
	// Index picks the addresses (see above); balancers running at once need different ones.
	Index int
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// Balancer is a running data plane.
type Balancer struct {
	cfg   BalancerConfig
	names names

	mu       sync.Mutex
	haproxy  *daemon
	running  HAProxyConfig // the structure the running config has
	links    map[int]string
	reloads  int
	failures int // "Loading failure" lines in the log before the last reload
	closed   bool
}

// BalancerAvailable says what this machine lacks to run a Balancer, or nil.
func BalancerAvailable() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	for _, bin := range []string{"ip", "nsenter", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("lab balancer needs %s in PATH (apt-get install -y iproute2 util-linux iptables): %w", bin, err)
		}
	}
	if _, err := os.Stat(haproxyPath()); err != nil {
		return fmt.Errorf("lab balancer needs HAProxy (apt-get install -y haproxy): %w", err)
	}
	return nil
}

func haproxyPath() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	return "/usr/sbin/haproxy"
}

// StartBalancer makes the namespace and its front veth and starts HAProxy with no listeners;
// it returns once HAProxy answers on its stats socket. A failed start leaves nothing behind.
func StartBalancer(ctx context.Context, cfg BalancerConfig) (*Balancer, error) {
	if err := BalancerAvailable(); err != nil {
		return nil, err
	}
	if !validName.MatchString(cfg.Name) {
		return nil, fmt.Errorf("balancer name %q: want [a-z][a-z0-9-]{0,11} (it names a veth, 15 bytes at most)", cfg.Name)
	}
	if cfg.Index < 0 || cfg.Index > MaxBalancerIndex {
		return nil, fmt.Errorf("balancer %s: index %d out of range 0..%d", cfg.Name, cfg.Index, MaxBalancerIndex)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	b := &Balancer{cfg: cfg, names: namesFor(cfg.Name), links: map[int]string{}}
	if pid, ok := liveOwner(b.names); ok {
		return nil, fmt.Errorf("balancer %s: in use by running process %d", cfg.Name, pid)
	}
	begin := time.Now()
	if err := teardown(ctx, b.names); err != nil {
		return nil, fmt.Errorf("balancer %s: remove stale lab: %w", cfg.Name, err)
	}
	if err := b.start(ctx); err != nil {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("balancer %s: %w", cfg.Name, err), b.Close(cleanupCtx))
	}
	cfg.Logf("balancer %s up at %s in %s", cfg.Name, b.Addr(), time.Since(begin).Round(time.Millisecond))
	return b, nil
}

func (b *Balancer) start(ctx context.Context) error {
	if err := claim(b.names); err != nil {
		return err
	}
	k := b.cfg.Index
	out, err := run(ctx, "ip", "-o", "-4", "addr", "show", "to", frontPrefix(k).String())
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(out); s != "" {
		return fmt.Errorf("balancer index %d is in use (another balancer running?): %s", k, s)
	}
	n := b.names
	steps := [][]string{
		{"ip", "netns", "add", n.netns},
		{"ip", "link", "add", n.vethHost, "type", "veth", "peer", "name", "eth0", "netns", n.netns},
		{"ip", "-n", n.netns, "link", "set", "lo", "up"},
		{"ip", "-n", n.netns, "addr", "add", b.Addr() + "/30", "dev", "eth0"},
		{"ip", "-n", n.netns, "link", "set", "eth0", "up"},
		{"ip", "addr", "add", b.HostAddr() + "/30", "dev", n.vethHost},
		{"ip", "link", "set", n.vethHost, "up"},
	}
	for _, argv := range steps {
		if _, err := run(ctx, argv[0], argv[1:]...); err != nil {
			return err
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+n.vethHost+"/disable_ipv6", []byte("1"), 0); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("disable ipv6 on %s: %w", n.vethHost, err)
	}
	if _, err := run(ctx, "nsenter", "--net="+b.NetnsPath(), "--", "sh", "-c",
		`[ ! -d /proc/sys/net/ipv6 ] || { echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; }`); err != nil {
		return err
	}
	if err := b.writeConfig(ctx, HAProxyConfig{}); err != nil {
		return err
	}
	b.haproxy = launch("haproxy", "nsenter", "--net="+b.NetnsPath(), "--", haproxyPath(), "-W", "-db", "-f", b.configPath())
	if b.haproxy.err != nil {
		return b.haproxy.err
	}
	if err := b.haproxy.waitFor(ctx, "Loading success", 10*time.Second); err != nil {
		return err
	}
	_, err = b.workerPID(ctx, 0, 10*time.Second)
	return err
}

func frontPrefix(k int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("10.214.%d.0/30", k))
}

// Name is the balancer's lab name.
func (b *Balancer) Name() string { return b.cfg.Name }

// Addr is where clients reach the balancer's listeners: the load balancer's address.
func (b *Balancer) Addr() string { return fmt.Sprintf("10.214.%d.2", b.cfg.Index) }

// HostAddr is the host end of the front veth: a client on the host comes from it.
func (b *Balancer) HostAddr() string { return fmt.Sprintf("10.214.%d.1", b.cfg.Index) }

// SourcePrefix holds every address the balancer's requests and health checks come from, as
// the instances see them.
func (b *Balancer) SourcePrefix() netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("10.215.%d.0/24", b.cfg.Index))
}

// NetnsPath is the balancer's network namespace.
func (b *Balancer) NetnsPath() string { return "/run/netns/" + b.names.netns }

// Reloads counts the configuration reloads (listener or target group changes).
func (b *Balancer) Reloads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reloads
}

// Logs returns the end of HAProxy's log (server state changes, errors).
func (b *Balancer) Logs() string {
	if b.haproxy == nil {
		return ""
	}
	return b.haproxy.log.tail()
}

func (b *Balancer) configPath() string { return filepath.Join(b.names.stateDir, "haproxy.cfg") }
func (b *Balancer) socketPath() string { return filepath.Join(b.names.stateDir, "admin.sock") }
func (b *Balancer) statePath() string  { return filepath.Join(b.names.stateDir, "server-state") }

// Link joins the balancer to an instance: a veth from the balancer's namespace (i<index>) to
// the instance's (elb<k>), and a route to addr, the instance's address, over it. Index is the
// instance's lab index (0..MaxIndex); a link of that index left from an earlier instance is
// replaced. Idempotent for the same namespace.
func (b *Balancer) Link(ctx context.Context, netnsPath string, index int, addr string) error {
	if index < 0 || index > MaxIndex {
		return fmt.Errorf("link balancer %s: instance index %d out of range", b.cfg.Name, index)
	}
	if !strings.HasPrefix(netnsPath, "/run/netns/") {
		return fmt.Errorf("link balancer %s: %s is not a named network namespace", b.cfg.Name, netnsPath)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("link balancer %s: closed", b.cfg.Name)
	}
	if b.links[index] == netnsPath {
		return nil
	}
	if err := b.unlinkLocked(ctx, index); err != nil {
		return err
	}
	ns, mine := strings.TrimPrefix(netnsPath, "/run/netns/"), "i"+strconv.Itoa(index)
	theirs := "elb" + strconv.Itoa(b.cfg.Index)
	k := b.cfg.Index
	steps := [][]string{
		{"ip", "-n", b.names.netns, "link", "add", mine, "type", "veth", "peer", "name", theirs, "netns", ns},
		{"ip", "-n", b.names.netns, "addr", "add", fmt.Sprintf("10.215.%d.%d/30", k, 4*index+1), "dev", mine},
		{"ip", "-n", b.names.netns, "link", "set", mine, "up"},
		{"ip", "-n", ns, "addr", "add", fmt.Sprintf("10.215.%d.%d/30", k, 4*index+2), "dev", theirs},
		{"ip", "-n", ns, "link", "set", theirs, "up"},
		{"ip", "-n", b.names.netns, "route", "replace", addr + "/32", "dev", mine, "src", fmt.Sprintf("10.215.%d.%d", k, 4*index+1)},
	}
	for _, argv := range steps {
		if _, err := run(ctx, argv[0], argv[1:]...); err != nil {
			_, _ = run(ctx, "ip", "-n", b.names.netns, "link", "del", mine)
			return fmt.Errorf("link balancer %s to %s: %w", b.cfg.Name, ns, err)
		}
	}
	b.links[index] = netnsPath
	return nil
}

// Unlink removes the link to the instance of this index (deleting one end of a veth deletes
// both, at once: before its namespace goes, so nothing lingers). Idempotent.
func (b *Balancer) Unlink(ctx context.Context, index int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unlinkLocked(ctx, index)
}

func (b *Balancer) unlinkLocked(ctx context.Context, index int) error {
	delete(b.links, index)
	_, err := run(ctx, "ip", "-n", b.names.netns, "link", "del", "i"+strconv.Itoa(index))
	if err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		return fmt.Errorf("unlink balancer %s from instance %d: %w", b.cfg.Name, index, err)
	}
	return nil
}

// Close removes the links, kills HAProxy and removes the namespace, the veth and the state
// dir. Idempotent.
func (b *Balancer) Close(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	var errs []error
	for _, index := range slices.Sorted(mapKeys(b.links)) {
		errs = append(errs, b.unlinkLocked(ctx, index))
	}
	if err := teardown(ctx, b.names); err != nil {
		errs = append(errs, fmt.Errorf("balancer %s: close: %w", b.cfg.Name, err))
	}
	if b.haproxy != nil {
		b.haproxy.reap(ctx)
	}
	return errors.Join(errs...)
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Servers is every server's state from the stats socket.
func (b *Balancer) Servers(ctx context.Context) ([]ServerStat, error) {
	out, err := b.Command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	return parseStat(out)
}

// Command sends one command to HAProxy's runtime API (the stats socket, admin level) and
// returns its answer.
func (b *Balancer) Command(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", b.socketPath())
	if err != nil {
		return "", fmt.Errorf("haproxy %s: %s: %w", b.cfg.Name, cmd, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy %s: %s: %w", b.cfg.Name, cmd, err)
	}
	out, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		return "", fmt.Errorf("haproxy %s: %s: %w", b.cfg.Name, cmd, err)
	}
	return string(out), nil
}

// command runs cmd and fails unless its answer is empty or starts with one of ok.
func (b *Balancer) command(ctx context.Context, cmd string, ok ...string) error {
	out, err := b.Command(ctx, cmd)
	if err != nil {
		return err
	}
	answer := strings.TrimSpace(out)
	if answer == "" || slices.ContainsFunc(ok, func(p string) bool { return strings.HasPrefix(answer, p) }) {
		return nil
	}
	return fmt.Errorf("haproxy %s: %s: %s", b.cfg.Name, cmd, answer)
}

// workerPID waits (up to limit) for a worker other than old to answer on the stats socket.
func (b *Balancer) workerPID(ctx context.Context, old int, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	var last error
	for {
		out, err := b.Command(ctx, "show info")
		if err == nil {
			for l := range strings.Lines(out) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Pid: "); ok {
					if pid, _ := strconv.Atoi(v); pid != 0 && pid != old {
						return pid, nil
					}
				}
			}
			err = fmt.Errorf("worker %d still answers", old)
		}
		last = err
		if b.haproxy.log.count("Loading failure") > b.failures {
			return 0, fmt.Errorf("haproxy %s: reload failed:\n%s", b.cfg.Name, b.haproxy.log.tail())
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("timed out after %s waiting for haproxy %s's new worker: %w", limit, b.cfg.Name, last)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-b.haproxy.exited:
			return 0, fmt.Errorf("haproxy %s exited:\n%s", b.cfg.Name, b.haproxy.log.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// writeConfig renders c, checks it with haproxy -c and puts it in place.
func (b *Balancer) writeConfig(ctx context.Context, c HAProxyConfig) error {
	data, err := renderHAProxy(c, b.Addr(), haproxyPaths{socket: b.socketPath(), stateFile: b.statePath()})
	if err != nil {
		return err
	}
	next := b.configPath() + ".next"
	if err := os.WriteFile(next, data, 0o600); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, haproxyPath(), "-c", "-q", "-f", next).CombinedOutput(); err != nil {
		return fmt.Errorf("haproxy %s: config refused: %w: %s", b.cfg.Name, err, strings.TrimSpace(string(out)))
	}
	return os.Rename(next, b.configPath())
}

// Apply makes HAProxy serve c: a reload when its listeners or target groups changed, then the
// runtime API for the servers (new ones start DOWN and take Rise passing checks to go UP, as a
// new target is "initial" until healthy; draining ones stop getting new requests; ones no
// longer listed are put in maintenance, their sessions shut and removed). A server that still
// has connections is left in maintenance and removed by a later Apply.
func (b *Balancer) Apply(ctx context.Context, c HAProxyConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("balancer %s: closed", b.cfg.Name)
	}
	have, err := b.Servers(ctx)
	if err != nil {
		return err
	}
	if !sameStructure(b.running, c.structure()) {
		if err := b.reload(ctx, c, have); err != nil {
			return err
		}
		if have, err = b.Servers(ctx); err != nil {
			return err
		}
	}
	var errs []error
	for _, be := range c.Backends {
		for _, s := range be.Servers {
			i := slices.IndexFunc(have, func(h ServerStat) bool { return h.Backend == be.Name && h.Server == s.Name })
			switch {
			case i < 0:
				errs = append(errs, b.addServer(ctx, be, s))
			case s.Draining && have[i].Status != "DRAIN" && have[i].Status != "MAINT":
				errs = append(errs, b.command(ctx, "set server "+be.Name+"/"+s.Name+" state drain"))
			case !s.Draining && (have[i].Status == "DRAIN" || have[i].Status == "MAINT"):
				// Registered again while draining: it starts over, as a new target.
				ref := be.Name + "/" + s.Name
				errs = append(errs, b.command(ctx, "set server "+ref+" health down"), b.command(ctx, "set server "+ref+" state ready"))
			}
		}
	}
	for _, h := range have {
		i := slices.IndexFunc(c.Backends, func(be Backend) bool { return be.Name == h.Backend })
		if i >= 0 && slices.ContainsFunc(c.Backends[i].Servers, func(s Server) bool { return s.Name == h.Server }) {
			continue
		}
		if i < 0 {
			continue // its backend went with the reload
		}
		errs = append(errs, b.removeServer(ctx, h))
	}
	return errors.Join(errs...)
}

func sameStructure(a, b HAProxyConfig) bool {
	return slices.Equal(a.Frontends, b.Frontends) && slices.EqualFunc(a.Backends, b.Backends, func(x, y Backend) bool {
		return x.Name == y.Name && x.Health == y.Health
	})
}

// addServer adds a server with weight 0 (no traffic), starts its checks, forces it DOWN and
// only then gives it its weight: it gets requests once Rise checks passed.
func (b *Balancer) addServer(ctx context.Context, be Backend, s Server) error {
	ref := be.Name + "/" + s.Name
	steps := []struct{ cmd, ok string }{
		{fmt.Sprintf("add server %s %s:%d %s", ref, s.Addr, s.Port, serverParams(be.Health, 0)), "New server registered"},
		{"enable health " + ref, ""},
		{"enable server " + ref, ""},
		{"set server " + ref + " health down", ""},
		{"set weight " + ref + " 1", ""},
	}
	if s.Draining {
		steps = append(steps, struct{ cmd, ok string }{"set server " + ref + " state drain", ""})
	}
	for _, st := range steps {
		if err := b.command(ctx, st.cmd, st.ok); err != nil {
			return err
		}
	}
	b.cfg.Logf("balancer %s: server %s added at %s:%d", b.cfg.Name, ref, s.Addr, s.Port)
	return nil
}

// removeServer ends what is left of a server's connections and deletes it.
func (b *Balancer) removeServer(ctx context.Context, h ServerStat) error {
	ref := h.Backend + "/" + h.Server
	if err := b.command(ctx, "set server "+ref+" state maint"); err != nil {
		return err
	}
	if err := b.command(ctx, "shutdown sessions server "+ref); err != nil {
		return err
	}
	if err := b.command(ctx, "del server "+ref, "Server deleted"); err != nil {
		return err
	}
	b.cfg.Logf("balancer %s: server %s removed", b.cfg.Name, ref)
	return nil
}

// reload writes the new structure with the servers running now (their states go through the
// server-state file), and has the master start a new worker (SIGUSR2): it takes over the
// listening sockets, and the old worker finishes the connections it has.
func (b *Balancer) reload(ctx context.Context, c HAProxyConfig, have []ServerStat) error {
	next := c.structure()
	for i, be := range next.Backends {
		for _, s := range c.Backends[i].Servers {
			if slices.ContainsFunc(have, func(h ServerStat) bool { return h.Backend == be.Name && h.Server == s.Name }) {
				next.Backends[i].Servers = append(next.Backends[i].Servers, s)
			}
		}
	}
	state, err := b.Command(ctx, "show servers state")
	if err != nil {
		return err
	}
	if err := os.WriteFile(b.statePath(), []byte(state), 0o600); err != nil {
		return err
	}
	if err := b.writeConfig(ctx, next); err != nil {
		return err
	}
	old, err := b.workerPID(ctx, 0, 5*time.Second)
	if err != nil {
		return err
	}
	b.failures = b.haproxy.log.count("Loading failure")
	if err := b.haproxy.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		return fmt.Errorf("reload haproxy %s: %w", b.cfg.Name, err)
	}
	worker, err := b.workerPID(ctx, old, 10*time.Second)
	if err != nil {
		return err
	}
	b.running, b.reloads = c.structure(), b.reloads+1
	b.cfg.Logf("balancer %s: reloaded (worker %d after %d): %d listeners, %d target groups", b.cfg.Name, worker, old, len(c.Frontends), len(c.Backends))
	return nil
}

// count is how often s occurs in the log kept.
func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Count(b.data, []byte(s))
}

// RemoveStale removes the lab (an instance's or a balancer's) of this name that a killed run
// left behind; it refuses one whose owner is alive.
func RemoveStale(ctx context.Context, name string) error {
	n := namesFor(name)
	if pid, ok := liveOwner(n); ok {
		return fmt.Errorf("lab %s: in use by running process %d", name, pid)
	}
	return teardown(ctx, n)
}
