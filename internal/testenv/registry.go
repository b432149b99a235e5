package testenv

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/sys/unix"
)

// Registry is one in-memory OCI registry (go-containerregistry's pkg/registry) behind HTTP basic
// auth (none when User is ""), served on any number of listeners until Close: they share one
// store, so what is pushed through one listener is pulled through another.
type Registry struct {
	User     string
	Password string
	store    http.Handler

	mu      sync.Mutex
	servers map[net.Listener]*http.Server
	wg      sync.WaitGroup
}

// NewRegistry makes an empty registry that serves nothing until given a listener.
func NewRegistry(user, password string) *Registry {
	return &Registry{
		User:     user,
		Password: password,
		store:    registry.New(registry.Logger(nullLogger())),
		servers:  map[net.Listener]*http.Server{},
	}
}

// Store is the registry's content without auth, for handlers that put rules of their own in
// front of it (awslab's ECR rules) and are then served with ServeHandler.
func (r *Registry) Store() http.Handler { return r.store }

// Serve serves the registry on l until Stop(l) or Close.
func (r *Registry) Serve(l net.Listener) { r.ServeHandler(l, r.store) }

// ServeHandler serves h, behind the registry's basic auth, on l until Stop(l) or Close.
func (r *Registry) ServeHandler(l net.Listener, h http.Handler) {
	if r.User != "" {
		h = BasicAuth(h, r.User, r.Password)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.servers[l] = srv
	r.mu.Unlock()
	r.wg.Go(func() { _ = srv.Serve(l) })
}

// Stop closes one listener and its connections at once (e.g. a lab instance going away).
func (r *Registry) Stop(l net.Listener) {
	r.mu.Lock()
	srv := r.servers[l]
	delete(r.servers, l)
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Close stops every listener, letting requests in flight finish until ctx is done (then cutting
// them off), and drops the registry's contents.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	servers := r.servers
	r.servers = map[net.Listener]*http.Server{}
	r.mu.Unlock()
	var errs []error
	for l, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("registry %s: close: %w", l.Addr(), err))
			_ = srv.Close()
		}
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// EngineRegistry is a Registry listening on a loopback port inside the engine's network
// namespace (where the engine pushes and pulls without any insecure-registry config) and on the
// host's loopback (where tests inspect it).
type EngineRegistry struct {
	*Registry
	EngineHost string // host:port as the engine sees it
	HostAddr   string // host:port on this machine's loopback
}

// StartRegistry starts a registry that lives as long as the test; an empty user means no auth.
func StartRegistry(t testing.TB, user, password string) *EngineRegistry {
	t.Helper()
	inEngine, err := ListenInNetns(fmt.Sprintf("/proc/%d/ns/net", EnginePID(t)), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen in the engine's network namespace: %v", err)
	}
	onHost, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		inEngine.Close()
		t.Fatal(err)
	}
	reg := NewRegistry(user, password)
	reg.Serve(inEngine)
	reg.Serve(onHost)
	t.Cleanup(func() {
		// A fresh, already-cancelled context: the test is over, nothing in flight needs finishing.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = reg.Close(ctx)
	})
	return &EngineRegistry{Registry: reg, EngineHost: inEngine.Addr().String(), HostAddr: onHost.Addr().String()}
}

// BasicAuth guards a registry the way ECR's registry endpoint does: basic auth or 401.
func BasicAuth(next http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ListenInNetns opens a listener inside the network namespace at nsPath. A socket belongs to
// the namespace it was created in, so serving it from any goroutine later is fine; only the
// creating thread has to switch, and it is discarded if switching back fails.
func ListenInNetns(nsPath, network, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer self.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		ln, listenErr := net.Listen(network, addr)
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime then ends it with this goroutine.
			done <- result{ln: ln, err: listenErr}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ln: ln, err: listenErr}
	}()
	r := <-done
	return r.ln, r.err
}
