package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// healthServer answers /health with the given status code and body.
func healthServer(t *testing.T, code int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProbeClassifiesAnswers(t *testing.T) {
	tests := []struct {
		name        string
		code        int
		body        string
		want        string
		outcome     Outcome
		version     string
		errContains string
	}{
		{"a healthy answer with the expected version is ok", 200, `{"status":"ok","version":"a1b2c3d"}`, "a1b2c3d", OK, "a1b2c3d", ""},
		{"an empty expected version accepts any version", 200, `{"status":"ok","version":"a1b2c3d"}`, "", OK, "a1b2c3d", ""},
		{"another version answering is wrong_version", 200, `{"status":"ok","version":"9f8e7d6"}`, "a1b2c3d", WrongVersion, "9f8e7d6", `version "9f8e7d6", want "a1b2c3d"`},
		{"a 500 is an http_error with its status", 500, `boom`, "a1b2c3d", HTTPError, "", "status 500: boom"},
		{"a 502 from a proxy is an http_error", 502, `<html>Bad Gateway</html>`, "a1b2c3d", HTTPError, "", "status 502"},
		{"a body that is not JSON is bad_body", 200, `<html>ok</html>`, "a1b2c3d", BadBody, "", "decode body"},
		{"a status other than ok is bad_body", 200, `{"status":"starting","version":"a1b2c3d"}`, "a1b2c3d", BadBody, "a1b2c3d", `status "starting"`},
		{"a body without status is bad_body", 200, `{"version":"a1b2c3d"}`, "a1b2c3d", BadBody, "a1b2c3d", "no status"},
		{"a body without version is bad_body", 200, `{"status":"ok"}`, "", BadBody, "", "no version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := healthServer(t, tt.code, tt.body)
			s := New(time.Second).Probe(t.Context(), srv.URL, tt.want)
			if s.Outcome != tt.outcome || s.Version != tt.version {
				t.Fatalf("outcome %s version %q (err %q), want %s version %q", s.Outcome, s.Version, s.Err, tt.outcome, tt.version)
			}
			if s.Status != tt.code {
				t.Errorf("status %d, want %d", s.Status, tt.code)
			}
			if tt.errContains == "" && s.Err != "" || !strings.Contains(s.Err, tt.errContains) {
				t.Errorf("err %q, want it to contain %q", s.Err, tt.errContains)
			}
			if s.At.IsZero() || s.Latency <= 0 {
				t.Errorf("at %v latency %v: want both measured", s.At, s.Latency)
			}
			if s.OK() != (tt.outcome == OK) {
				t.Errorf("OK() = %v for %s", s.OK(), s.Outcome)
			}
		})
	}
}

func TestProbeReportsRefusedWhenNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := New(time.Second).Probe(t.Context(), "http://"+addr, "a1b2c3d")
	if s.Outcome != Refused || s.Status != 0 || s.Err == "" {
		t.Fatalf("got %+v, want refused with an error and no status", s)
	}
}

func TestProbeTimesOutOnAHangingHandler(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // hang until the prober gives up
	}))
	t.Cleanup(srv.Close)
	const timeout = 50 * time.Millisecond
	s := New(timeout).Probe(t.Context(), srv.URL, "a1b2c3d")
	if s.Outcome != Timeout {
		t.Fatalf("outcome %s (%s), want timeout", s.Outcome, s.Err)
	}
	if s.Latency < timeout {
		t.Errorf("latency %v, want at least the timeout %v", s.Latency, timeout)
	}
}

func TestProbeTimesOutWhenTheCallersDeadlineIsShorter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	s := New(time.Minute).Probe(ctx, srv.URL, "a1b2c3d")
	if s.Outcome != Timeout {
		t.Fatalf("outcome %s (%s), want timeout", s.Outcome, s.Err)
	}
}

// A probe must see the backend as it is now: a pooled connection to a stopped backend (or to a
// proxy's old upstream) would report a stale answer.
func TestProbeOpensAFreshConnectionEveryTime(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"ok","version":"a1b2c3d"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p := New(time.Second)
	const probes = 5
	for range probes {
		if s := p.Probe(t.Context(), srv.URL+"/", "a1b2c3d"); !s.OK() {
			t.Fatalf("probe: %s %s", s.Outcome, s.Err)
		}
	}
	if got := conns.Load(); got != probes {
		t.Fatalf("%d connections for %d probes, want one each", got, probes)
	}
}

func TestProbeDoesNotFollowRedirects(t *testing.T) {
	healthy := healthServer(t, 200, `{"status":"ok","version":"a1b2c3d"}`)
	srv := httptest.NewServer(http.RedirectHandler(healthy.URL+"/health", http.StatusFound))
	t.Cleanup(srv.Close)
	s := New(time.Second).Probe(t.Context(), srv.URL, "a1b2c3d")
	if s.Outcome != HTTPError || s.Status != http.StatusFound {
		t.Fatalf("got %s status %d, want http_error 302", s.Outcome, s.Status)
	}
}

func TestProbeIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1") // would refuse every request if used
	t.Setenv("NO_PROXY", "")
	srv := healthServer(t, 200, `{"status":"ok","version":"a1b2c3d"}`)
	if s := New(time.Second).Probe(t.Context(), srv.URL, "a1b2c3d"); !s.OK() {
		t.Fatalf("probe through the environment's proxy: %s %s", s.Outcome, s.Err)
	}
}

func TestNewDefaultsTheTimeout(t *testing.T) {
	if got := New(0).Timeout(); got != DefaultTimeout {
		t.Fatalf("timeout %v, want %v", got, DefaultTimeout)
	}
}

func TestSnippetKeepsErrorsShortAndPrintable(t *testing.T) {
	got := snippet([]byte(strings.Repeat("é", 100) + "\n\t\xff"))
	if len(got) > 124 || !strings.HasSuffix(got, "...") || strings.ContainsAny(got, "\n\t\xff") {
		t.Fatalf("snippet %q", got)
	}
}
