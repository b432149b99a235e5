// Package load sends users' traffic at the service during a drill: real HTTP requests at a fixed
// rate from a pool of keep-alive clients, the way browsers hold connections open, so the report
// can say what users saw, not only what the probes (a fresh connection each) saw. The load is
// bounded: a fixed rate, a fixed pool, a timeout per request, and a tick that finds every client
// busy is counted as not sent rather than queued.
package load

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// Limits keep a misconfigured drill from becoming a load test.
const (
	MaxRPS         = 500
	DefaultClients = 8
)

// Config is the load's shape.
type Config struct {
	RPS     int           // requests started per second
	Clients int           // keep-alive connections, one request in flight each (DefaultClients)
	Timeout time.Duration // per request
	Path    string        // what users ask for; default "/"
}

// Validate refuses a load the tool will not send.
func (c Config) Validate() error {
	switch {
	case c.RPS < 1 || c.RPS > MaxRPS:
		return fmt.Errorf("load: %d requests per second: want 1 to %d", c.RPS, MaxRPS)
	case c.Clients < 0 || c.Clients > 256:
		return fmt.Errorf("load: %d clients: want 1 to 256", c.Clients)
	case c.Timeout < 0:
		return fmt.Errorf("load: timeout %s must not be negative", c.Timeout)
	}
	return nil
}

// Generator sends the load until its context ends.
type Generator struct {
	cfg     Config
	clients []*http.Client
	// ticks paces the requests (a real ticker at cfg.RPS); tests feed their own.
	ticks func() (<-chan time.Time, func())
}

// New makes the pool; nothing is sent until Run.
func New(cfg Config) *Generator {
	if cfg.Clients == 0 {
		cfg.Clients = DefaultClients
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	g := &Generator{cfg: cfg, ticks: func() (<-chan time.Time, func()) {
		t := time.NewTicker(time.Second / time.Duration(cfg.RPS))
		return t.C, t.Stop
	}}
	for range cfg.Clients {
		g.clients = append(g.clients, &http.Client{
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 15 * time.Second}).DialContext,
				MaxIdleConnsPerHost: 1,
				MaxConnsPerHost:     1,
				IdleConnTimeout:     30 * time.Second,
			},
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
	}
	return g
}

// Run sends cfg.RPS requests a second to endpoint() until ctx ends, and hands each finished
// (or skipped) request to record, from several goroutines. It returns when every request it
// started has finished.
func (g *Generator) Run(ctx context.Context, endpoint func() string, now func() time.Time, record func(drill.UserRequest)) {
	idle := make(chan *http.Client, len(g.clients))
	for _, c := range g.clients {
		idle <- c
	}
	ticks, stop := g.ticks()
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		for _, c := range g.clients {
			c.CloseIdleConnections()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ticks:
			if !ok {
				return
			}
		}
		base := endpoint()
		if base == "" {
			continue
		}
		select {
		case c := <-idle:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { idle <- c }()
				record(g.send(ctx, c, base, now))
			}()
		default:
			record(drill.UserRequest{At: now(), Skipped: true})
		}
	}
}

func (g *Generator) send(ctx context.Context, c *http.Client, base string, now func() time.Time) drill.UserRequest {
	r := drill.UserRequest{At: now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+g.cfg.Path, nil)
	if err != nil {
		r.Outcome = probe.HTTPError
		return r
	}
	req.Header.Set("User-Agent", "deploydrill-load")
	resp, err := c.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		r.Status = resp.StatusCode
	}
	r.Latency = now().Sub(r.At)
	switch {
	case ctx.Err() != nil && err != nil:
		r.Skipped = true // cut short by the drill ending: says nothing about the service
	case err != nil:
		r.Outcome = probe.Classify(err)
	case r.Status >= 400:
		r.Outcome = probe.HTTPError
	default:
		r.Outcome = probe.OK
	}
	return r
}

var _ drill.Loader = (*Generator)(nil)
