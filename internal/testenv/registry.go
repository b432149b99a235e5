package testenv

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/sys/unix"
)

// Registry is an OCI registry (go-containerregistry's) behind basic auth, listening on a
// loopback port inside the engine's network namespace (where the engine pushes and pulls
// without any insecure-registry config) and on the host's loopback (where tests inspect it).
type Registry struct {
	EngineHost string // host:port as the engine sees it
	HostAddr   string // host:port on this machine's loopback
	User       string
	Password   string
}

// StartRegistry starts a registry that lives as long as the test; an empty user means no auth.
func StartRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	inEngine, err := ListenInNetns(fmt.Sprintf("/proc/%d/ns/net", EnginePID(t)), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen in the engine's network namespace: %v", err)
	}
	onHost, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = registry.New(registry.Logger(nullLogger()))
	if user != "" {
		handler = BasicAuth(handler, user, password)
	}
	for _, ln := range []net.Listener{inEngine, onHost} {
		srv := &http.Server{Handler: handler}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	return &Registry{EngineHost: inEngine.Addr().String(), HostAddr: onHost.Addr().String(), User: user, Password: password}
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
