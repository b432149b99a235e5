package lab

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HAProxyConfig is what a Balancer serves: a load balancer's listeners (frontends) and target
// groups (backends) with their targets (servers). Apply makes the running HAProxy match it.
type HAProxyConfig struct {
	Frontends []Frontend
	Backends  []Backend
}

// Frontend is one listener: plain HTTP on Port of the balancer's address, to Backend.
type Frontend struct {
	Port    int
	Backend string
}

// Backend is one target group.
type Backend struct {
	Name    string // [A-Za-z0-9-], as a target group's name
	Health  HealthCheck
	Servers []Server
}

// HealthCheck is a target group's health check as HAProxy runs it: an HTTP GET of Path every
// Interval, failing after Timeout, a server going UP after Rise passes in a row and DOWN after
// Fall failures in a row.
type HealthCheck struct {
	Path     string
	Matcher  string // the HTTP codes that pass: "200", "200,302", "200-299"
	Port     int    // 0: the server's own port (ELB's "traffic-port")
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
}

// Server is one target.
type Server struct {
	Name string // unique in its backend: [A-Za-z0-9_.:-]
	Addr string // IPv4 address
	Port int
	// Draining: no new requests, those in flight finish (HAProxy's DRAIN). Removing the server
	// from the config ends what is left, as the end of a deregistration delay does.
	Draining bool
}

var (
	haproxyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	checkPath   = regexp.MustCompile(`^/[!-~]*$`) // printable, no spaces: it goes on the config line as is
)

// Validate refuses what HAProxy would misread: names outside its identifier characters, a
// health check path with spaces or quotes, durations it cannot express, a matcher that is no
// list or range of codes, a port twice.
func (c HAProxyConfig) Validate() error {
	var errs []string
	ports := map[int]bool{}
	backends := map[string]bool{}
	for _, b := range c.Backends {
		if !haproxyName.MatchString(b.Name) || backends[b.Name] {
			errs = append(errs, fmt.Sprintf("backend %q: not a unique HAProxy name", b.Name))
		}
		backends[b.Name] = true
		h := b.Health
		if !checkPath.MatchString(h.Path) || strings.ContainsAny(h.Path, `"'\#`) {
			errs = append(errs, fmt.Sprintf("backend %s: health check path %q", b.Name, h.Path))
		}
		if _, err := expectRule(h.Matcher); err != nil {
			errs = append(errs, fmt.Sprintf("backend %s: matcher %q: %v", b.Name, h.Matcher, err))
		}
		if h.Interval < time.Millisecond || h.Timeout < time.Millisecond || h.Rise < 1 || h.Fall < 1 || h.Port < 0 || h.Port > 65535 {
			errs = append(errs, fmt.Sprintf("backend %s: health check %+v", b.Name, h))
		}
		servers := map[string]bool{}
		for _, s := range b.Servers {
			if !haproxyName.MatchString(s.Name) || servers[s.Name] {
				errs = append(errs, fmt.Sprintf("backend %s: server %q: not a unique HAProxy name", b.Name, s.Name))
			}
			servers[s.Name] = true
			if !ipv4.MatchString(s.Addr) || s.Port < 1 || s.Port > 65535 {
				errs = append(errs, fmt.Sprintf("backend %s: server %s at %s:%d", b.Name, s.Name, s.Addr, s.Port))
			}
		}
	}
	for _, f := range c.Frontends {
		if f.Port < 1 || f.Port > 65535 || ports[f.Port] {
			errs = append(errs, fmt.Sprintf("frontend :%d: not a unique port", f.Port))
		}
		ports[f.Port] = true
		if !backends[f.Backend] {
			errs = append(errs, fmt.Sprintf("frontend :%d: no backend %q", f.Port, f.Backend))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("haproxy config: %s", strings.Join(errs, "; "))
	}
	return nil
}

var ipv4 = regexp.MustCompile(`^\d{1,3}(\.\d{1,3}){3}$`)

// structure is the config without its servers: what only a reload can change.
func (c HAProxyConfig) structure() HAProxyConfig {
	out := HAProxyConfig{Frontends: slices.Clone(c.Frontends)}
	for _, b := range c.Backends {
		b.Servers = nil
		out.Backends = append(out.Backends, b)
	}
	return out
}

// haproxyPaths are where a balancer's HAProxy keeps its files.
type haproxyPaths struct {
	socket, stateFile string
}

// renderHAProxy writes the haproxy.cfg for bind (the balancer's address). It is a pure
// function of its arguments (golden-tested). The servers it lists are the ones running when it
// is reloaded (their state carries over through the server-state file); servers added later
// are added at run time (Apply), which a static config cannot express.
//
// As an ALB does: each request is balanced round robin on its own (one server connection per
// request, closed after it, so a removed server has none left), a refused or timed-out
// connection is an error to the client (no retries, no redispatch to another server), and the
// health check is an HTTP GET with ELB's user agent.
func renderHAProxy(c HAProxyConfig, bind string, p haproxyPaths) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# The lab's load balancer data plane; written by internal/testenv/lab.")
	line("global")
	line("    master-worker")
	line("    nbthread 1")
	line("    stats socket %s mode 600 level admin expose-fd listeners", p.socket)
	line("    server-state-file %s", p.stateFile)
	line("    hard-stop-after 30s")
	line("    log stderr format short local0 info")
	line("")
	line("defaults")
	line("    mode http")
	line("    log global")
	line("    option httplog")
	line("    option dontlog-normal")
	line("    option http-server-close")
	line("    retries 0")
	line("    timeout connect 5s")
	line("    timeout client 60s")
	line("    timeout server 60s")
	line("    timeout http-request 10s")
	line("    load-server-state-from-file global")
	for _, f := range c.Frontends {
		line("")
		line("frontend listener-%d", f.Port)
		line("    bind %s:%d", bind, f.Port)
		line("    default_backend %s", f.Backend)
	}
	for _, be := range c.Backends {
		h := be.Health
		expect, _ := expectRule(h.Matcher)
		line("")
		line("backend %s", be.Name)
		line("    balance roundrobin")
		line("    timeout connect %s", ms(h.Timeout))
		line("    timeout check %s", ms(h.Timeout))
		line("    option httpchk")
		line("    http-check send meth GET uri %s ver HTTP/1.1 hdr Host health-check hdr User-Agent ELB-HealthChecker/2.0", h.Path)
		line("    http-check expect %s", expect)
		for _, s := range be.Servers {
			line("    server %s %s:%d %s", s.Name, s.Addr, s.Port, serverParams(h, 1))
		}
	}
	return []byte(b.String()), nil
}

// serverParams are a server's check settings, the same for the config and `add server`.
func serverParams(h HealthCheck, weight int) string {
	s := fmt.Sprintf("weight %d check inter %s rise %d fall %d", weight, ms(h.Interval), h.Rise, h.Fall)
	if h.Port != 0 {
		s += " port " + strconv.Itoa(h.Port)
	}
	return s
}

func ms(d time.Duration) string { return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms" }

// expectRule turns an ELB matcher ("200", "200,302", "200-299") into HAProxy's http-check
// expect: one code as a status, more as an anchored regex of codes.
func expectRule(matcher string) (string, error) {
	var codes []string
	for part := range strings.SplitSeq(matcher, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return "", fmt.Errorf("%q is not a code", part)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil {
				return "", fmt.Errorf("%q is not a range", part)
			}
		}
		if a < 100 || z > 599 || a > z {
			return "", fmt.Errorf("%q is out of range", part)
		}
		for code := a; code <= z; code++ {
			codes = append(codes, strconv.Itoa(code))
		}
	}
	slices.Sort(codes)
	codes = slices.Compact(codes)
	if len(codes) == 1 {
		return "status " + codes[0], nil
	}
	return "rstatus ^(" + strings.Join(codes, "|") + ")$", nil
}
