package load

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// run sends n requests (one per tick) and returns what was recorded.
func run(t *testing.T, g *Generator, endpoint string, n int) []drill.UserRequest {
	t.Helper()
	ticks := make(chan time.Time)
	g.ticks = func() (<-chan time.Time, func()) { return ticks, func() {} }
	var mu sync.Mutex
	var got []drill.UserRequest
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(t.Context(), func() string { return endpoint }, time.Now, func(r drill.UserRequest) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r)
		})
	}()
	for range n {
		ticks <- time.Now()
	}
	close(ticks)
	<-done
	return got
}

func count(reqs []drill.UserRequest) map[probe.Outcome]int {
	m := map[probe.Outcome]int{}
	for _, r := range reqs {
		if r.Skipped {
			m["skipped"]++
		} else {
			m[r.Outcome]++
		}
	}
	return m
}

func TestLoadReusesKeepAliveConnections(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		w.Write([]byte("<h1>flask-app</h1>"))
	}))
	defer srv.Close()
	got := run(t, New(Config{RPS: 10, Clients: 2}), srv.URL, 30)
	if c := count(got); c[probe.OK]+c["skipped"] != 30 || c[probe.OK] == 0 {
		t.Fatalf("outcomes %v, want 30 requests answered or skipped", c)
	}
	if len(conns) > 2 {
		t.Errorf("%d connections for 2 keep-alive clients", len(conns))
	}
}

func TestLoadClassifiesWhatUsersSee(t *testing.T) {
	t.Run("an error status", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
		defer srv.Close()
		if c := count(run(t, New(Config{RPS: 10, Clients: 1}), srv.URL, 5)); c[probe.HTTPError]+c["skipped"] != 5 || c[probe.HTTPError] == 0 {
			t.Errorf("outcomes %v, want http_error", c)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		if c := count(run(t, New(Config{RPS: 10, Clients: 1}), "http://"+addr, 5)); c[probe.Refused]+c["skipped"] != 5 || c[probe.Refused] == 0 {
			t.Errorf("outcomes %v, want refused", c)
		}
	})
	t.Run("a hung service times out and holds every client", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		var held []net.Conn
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held = append(held, c) // accepted, never answered
			}
		}()
		c := count(run(t, New(Config{RPS: 10, Clients: 2, Timeout: 100 * time.Millisecond}), "http://"+ln.Addr().String(), 20))
		if c[probe.Timeout] == 0 || c[probe.Timeout]+c["skipped"] != 20 {
			t.Errorf("outcomes %v, want timeouts, the rest skipped", c)
		}
	})
}

func TestLoadRefusesAnUnboundedLoad(t *testing.T) {
	for _, c := range []Config{{RPS: 0}, {RPS: MaxRPS + 1}, {RPS: 10, Clients: 1000}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if (Config{RPS: 20}).Validate() != nil {
		t.Error("20 rps refused")
	}
}
