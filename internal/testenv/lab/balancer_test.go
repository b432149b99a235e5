package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/golden"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

func sampleConfig() HAProxyConfig {
	return HAProxyConfig{
		Frontends: []Frontend{{Port: 80, Backend: "deploydrill-r1"}},
		Backends: []Backend{{
			Name:   "deploydrill-r1",
			Health: HealthCheck{Path: "/health", Matcher: "200", Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3},
			Servers: []Server{
				{Name: "i-0000000000000000a_80", Addr: "10.213.12.2", Port: 80},
				{Name: "i-0000000000000000b_80", Addr: "10.213.13.2", Port: 80, Draining: true},
			},
		}, {
			Name:   "other",
			Health: HealthCheck{Path: "/ready?full=1", Matcher: "200-204,302", Port: 8081, Interval: 500 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 5, Fall: 2},
		}},
	}
}

func TestHAProxyConfigIsAnALBsShape(t *testing.T) {
	got, err := renderHAProxy(sampleConfig(), "10.214.3.2", haproxyPaths{socket: "/tmp/lab-b/admin.sock", stateFile: "/tmp/lab-b/server-state"})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "haproxy.golden"), got)
	if BalancerAvailable() != nil {
		return // haproxy -c below needs HAProxy; the live test says so where it is required
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, got, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxyPath(), "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c refuses the rendered config: %v: %s", err, out)
	}
}

func TestHAProxyConfigRefusesWhatHAProxyWouldMisread(t *testing.T) {
	tests := []struct {
		name string
		edit func(*HAProxyConfig)
	}{
		{"a path with a space", func(c *HAProxyConfig) { c.Backends[0].Health.Path = "/health check" }},
		{"a path with a quote", func(c *HAProxyConfig) { c.Backends[0].Health.Path = `/h"` }},
		{"a matcher that is no code", func(c *HAProxyConfig) { c.Backends[0].Health.Matcher = "ok" }},
		{"a server name with a slash", func(c *HAProxyConfig) { c.Backends[0].Servers[0].Name = "a/b" }},
		{"a server twice", func(c *HAProxyConfig) { c.Backends[0].Servers[1].Name = c.Backends[0].Servers[0].Name }},
		{"a listener without its backend", func(c *HAProxyConfig) { c.Frontends[0].Backend = "gone" }},
		{"two listeners on one port", func(c *HAProxyConfig) { c.Frontends = append(c.Frontends, c.Frontends[0]) }},
		{"a server with a host name", func(c *HAProxyConfig) { c.Backends[0].Servers[0].Addr = "example.com" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sampleConfig()
			tt.edit(&c)
			if _, err := renderHAProxy(c, "10.214.3.2", haproxyPaths{}); err == nil {
				t.Error("rendered anyway")
			}
		})
	}
}

func TestParseShowStat(t *testing.T) {
	// Trimmed from HAProxy 2.6's `show stat`: a frontend, two servers (one going down, one
	// draining) and the backend.
	out := "# pxname,svname,scur,stot,econ,eresp,weight,chkfail,chkdown,lastchg,status,type,check_status,check_code,hrsp_5xx,addr,check_desc,\n" +
		"listener-80,FRONTEND,0,12,,,,,,,OPEN,0,,,0,,,\n" +
		"tg,i-a_80,1,7,0,1,1,3,1,4,UP 1/3,2,* L4CON,,2,10.213.12.2:80,Layer4 connection problem,\n" +
		"tg,i-b_80,0,5,2,0,1,0,0,9,DRAIN,2,L7OK,200,0,10.213.13.2:80,Layer7 check passed,\n" +
		"tg,BACKEND,1,12,2,1,2,,0,9,UP,1,,,2,,,\n"
	got, err := parseStat(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []ServerStat{
		{Backend: "tg", Server: "i-a_80", Addr: "10.213.12.2:80", Status: "UP", Transition: "1/3", Weight: 1, CheckStatus: "L4CON",
			CheckDesc: "Layer4 connection problem", Sessions: 1, TotalSessions: 7, ResponseErrors: 1, Failed5xx: 2, CheckFailures: 3, Downs: 1, LastChange: 4 * time.Second},
		{Backend: "tg", Server: "i-b_80", Addr: "10.213.13.2:80", Status: "DRAIN", Weight: 1, CheckStatus: "L7OK", CheckCode: 200,
			CheckDesc: "Layer7 check passed", TotalSessions: 5, ConnectionErrors: 2, LastChange: 9 * time.Second},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("server %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if !got[0].Up() || got[1].Up() {
		t.Error("Up: a server going down is still up; a draining one gets no new requests")
	}
}

// target is a bare network namespace with an HTTP server on addr:80 answering its name.
type target struct {
	name, netns, addr string
	ln                net.Listener
	srv               *http.Server
	health            atomic.Int32 // the status /health answers
}

func newTarget(t *testing.T, name, addr string) *target {
	t.Helper()
	ctx := t.Context()
	tg := &target{name: name, netns: "/run/netns/ddlab-" + name, addr: addr}
	_, _ = run(context.Background(), "ip", "netns", "del", "ddlab-"+name) // a stale one
	for _, argv := range [][]string{
		{"ip", "netns", "add", "ddlab-" + name},
		{"ip", "-n", "ddlab-" + name, "link", "set", "lo", "up"},
		{"ip", "-n", "ddlab-" + name, "addr", "add", addr + "/32", "dev", "lo"},
	} {
		if _, err := run(ctx, argv[0], argv[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		tg.stop()
		if _, err := run(context.Background(), "ip", "netns", "del", "ddlab-"+name); err != nil {
			t.Error(err)
		}
	})
	tg.health.Store(http.StatusOK)
	tg.serve(t)
	return tg
}

func (tg *target) serve(t *testing.T) {
	t.Helper()
	ln, err := testenv.ListenInNetns(tg.netns, "tcp", tg.addr+":80")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(tg.health.Load())) })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, tg.name) })
	tg.ln, tg.srv = ln, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = tg.srv.Serve(ln) }()
}

func (tg *target) stop() {
	if tg.srv != nil {
		_ = tg.srv.Close()
	}
}

// waitServers polls the stats socket until ok holds for every server, or fails after limit.
func waitServers(t *testing.T, b *Balancer, limit time.Duration, what string, ok func([]ServerStat) bool) []ServerStat {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		servers, err := b.Servers(t.Context())
		if err == nil && ok(servers) {
			return servers
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %+v (%v)\n%s", limit, what, servers, err, b.Logs())
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func status(servers []ServerStat, name string) string {
	for _, s := range servers {
		if s.Server == name {
			return s.Status
		}
	}
	return ""
}

// TestABalancerFollowsItsTargets runs HAProxy in its namespace in front of two target
// namespaces: new servers start DOWN and go UP by their checks, a failing health check takes
// one DOWN, draining stops new requests, a removed server goes, a listener added while
// requests flow reloads without failing one, and Close leaves nothing.
func TestABalancerFollowsItsTargets(t *testing.T) {
	if err := BalancerAvailable(); err != nil {
		testenv.Require(t, "the lab balancer", err.Error())
	}
	ctx := t.Context()
	b, err := StartBalancer(ctx, BalancerConfig{Name: "lbtest", Index: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = b.Close(context.Background())
		}
	})
	a, c := newTarget(t, "lbtest-a", "192.0.2.1"), newTarget(t, "lbtest-c", "192.0.2.2")
	for i, tg := range []*target{a, c} {
		if err := b.Link(ctx, tg.netns, i+1, tg.addr); err != nil {
			t.Fatal(err)
		}
	}
	cfg := HAProxyConfig{Frontends: []Frontend{{Port: 80, Backend: "tg"}}, Backends: []Backend{{Name: "tg",
		Health:  HealthCheck{Path: "/health", Matcher: "200", Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 2, Fall: 2},
		Servers: []Server{{Name: "a", Addr: a.addr, Port: 80}, {Name: "c", Addr: c.addr, Port: 80}}}}}

	start := time.Now()
	if err := b.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if first, _ := b.Servers(ctx); status(first, "a") != "DOWN" || status(first, "c") != "DOWN" {
		t.Errorf("new servers %+v: want DOWN until their checks pass", first)
	}
	waitServers(t, b, 5*time.Second, "both servers UP", func(s []ServerStat) bool { return status(s, "a") == "UP" && status(s, "c") == "UP" })
	t.Logf("both UP %s after Apply (rise 2 × 200 ms)", time.Since(start).Round(time.Millisecond))

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(port int) (string, error) {
		resp, err := client.Get(fmt.Sprintf("http://%s:%d/", b.Addr(), port))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s", resp.Status)
		}
		return string(body), nil
	}
	seen := map[string]int{}
	for range 10 {
		who, err := get(80)
		if err != nil {
			t.Fatal(err)
		}
		seen[who]++
	}
	if seen["lbtest-a"] == 0 || seen["lbtest-c"] == 0 {
		t.Errorf("requests reached %v, want both targets", seen)
	}

	t.Run("a failing health check takes a server down", func(t *testing.T) {
		c.health.Store(http.StatusServiceUnavailable)
		start := time.Now()
		down := waitServers(t, b, 3*time.Second, "c DOWN", func(s []ServerStat) bool { return status(s, "c") == "DOWN" })
		t.Logf("c DOWN %s after its /health turned 503 (fall 2 × 200 ms)", time.Since(start).Round(time.Millisecond))
		for _, s := range down {
			if s.Server == "c" && (s.CheckStatus != "L7STS" || s.CheckCode != 503) {
				t.Errorf("c's last check %s %d, want L7STS 503", s.CheckStatus, s.CheckCode)
			}
		}
		for range 5 {
			if who, err := get(80); err != nil || who != "lbtest-a" {
				t.Errorf("with c down: %q, %v", who, err)
			}
		}
		c.health.Store(http.StatusOK)
		waitServers(t, b, 3*time.Second, "c UP again", func(s []ServerStat) bool { return status(s, "c") == "UP" })
	})

	t.Run("a reload for a new listener fails no request and keeps the states", func(t *testing.T) {
		var failed, done atomic.Int32
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := get(80); err != nil {
					failed.Add(1)
					t.Logf("request during reload: %v", err)
				}
				done.Add(1)
			}
		})
		reloads := b.Reloads()
		next := cfg
		next.Frontends = append([]Frontend{{Port: 8080, Backend: "tg"}}, cfg.Frontends...)
		if err := b.Apply(ctx, next); err != nil {
			t.Fatal(err)
		}
		// Let the loop go on against the new worker for 20 requests more (bounded).
		after, deadline := done.Load()+20, time.After(5*time.Second)
		for waiting := true; waiting && done.Load() < after; {
			select {
			case <-deadline:
				waiting = false
			case <-time.After(5 * time.Millisecond):
			}
		}
		close(stop)
		wg.Wait()
		if b.Reloads() != reloads+1 || failed.Load() != 0 || done.Load() < after {
			t.Errorf("reloads %d (was %d), failed requests %d of %d: want one reload and no failure", b.Reloads(), reloads, failed.Load(), done.Load())
		}
		if s, _ := b.Servers(ctx); status(s, "a") != "UP" || status(s, "c") != "UP" {
			t.Errorf("after the reload: %+v, want both still UP", s)
		}
		if who, err := get(8080); err != nil || who == "" {
			t.Errorf("new listener: %q, %v", who, err)
		}
		cfg = next
	})

	t.Run("draining stops new requests; removing ends it", func(t *testing.T) {
		before := waitServers(t, b, time.Second, "stats", func([]ServerStat) bool { return true })
		cfg.Backends[0].Servers[1].Draining = true
		if err := b.Apply(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if s, _ := b.Servers(ctx); status(s, "c") != "DRAIN" {
			t.Fatalf("c is %q, want DRAIN", status(s, "c"))
		}
		for range 5 {
			if who, err := get(80); err != nil || who != "lbtest-a" {
				t.Errorf("while c drains: %q, %v", who, err)
			}
		}
		after, _ := b.Servers(ctx)
		for i := range after {
			if after[i].Server == "c" && after[i].TotalSessions != before[i].TotalSessions {
				t.Errorf("c took %d requests while draining", after[i].TotalSessions-before[i].TotalSessions)
			}
		}
		cfg.Backends[0].Servers = cfg.Backends[0].Servers[:1]
		if err := b.Apply(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if s, _ := b.Servers(ctx); len(s) != 1 || s[0].Server != "a" {
			t.Errorf("after removal: %+v, want a alone", s)
		}
	})

	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closed = true
	if _, err := os.Stat(b.NetnsPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s after Close: %v", b.NetnsPath(), err)
	}
	if out, _ := run(ctx, "ip", "-n", "ddlab-lbtest-a", "-o", "link", "show"); strings.Contains(out, "elb1") {
		t.Errorf("the link's far end outlived the balancer: %s", out)
	}
}

// TestABalancerLeftBehindIsRemoved: a balancer a killed run left (here: one never closed) is
// removed by the next StartBalancer of its name, and by RemoveStale, HAProxy included.
func TestABalancerLeftBehindIsRemoved(t *testing.T) {
	if err := BalancerAvailable(); err != nil {
		testenv.Require(t, "the lab balancer", err.Error())
	}
	ctx := t.Context()
	left, err := StartBalancer(ctx, BalancerConfig{Name: "lbstale", Index: 2})
	if err != nil {
		t.Fatal(err)
	}
	again, err := StartBalancer(ctx, BalancerConfig{Name: "lbstale", Index: 2})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-left.haproxy.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the first balancer's HAProxy outlived the second start")
	}
	if err := RemoveStale(ctx, "lbstale"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-again.haproxy.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("HAProxy outlived RemoveStale")
	}
	if _, err := os.Stat(again.NetnsPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace after RemoveStale: %v", err)
	}
	if _, err := os.Stat(again.names.stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir after RemoveStale: %v", err)
	}
}
