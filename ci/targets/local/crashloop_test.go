package local

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

// A target whose endpoint is srv (a restarted app as the tunnel shows it).
func targetAt(t *testing.T, srv *httptest.Server) *Target {
	t.Helper()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &Target{port: p}
}

func TestWaitServingReturnsOnTheFirstAnswerNotOnAnOpenPort(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 3 { // the port is open, the app's workers are still booting
			http.Error(w, "booting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"status":"ok","version":"v1"}`))
	}))
	defer srv.Close()
	if err := targetAt(t, srv).waitServing(make(chan struct{}), drill.Image{Tag: "v1", Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("waitServing probed %d times, want 4 (3 failures, then the answer)", got)
	}
}

func TestWaitServingEndsWhenTheLoopEnds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "booting", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	quit := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() { close(quit) })
	start := time.Now()
	if err := targetAt(t, srv).waitServing(quit, drill.Image{Tag: "v1", Version: "v1"}); err == nil {
		t.Fatal("waitServing = nil with the app never answering, want an error")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("waitServing took %s after quit, want it to end at once", took)
	}
}
