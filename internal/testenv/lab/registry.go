package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// Registry is an in-memory OCI registry (go-containerregistry's pkg/registry) behind HTTP basic
// auth, the way ECR takes its token: user "AWS", password the token. Plain HTTP: the lab's dockerd
// lists it in insecure-registries (it tries https first, then falls back: pitfall 8).
type Registry struct {
	Host    string // host:port of the first listener, the registry part of image references
	handler http.Handler

	mu      sync.Mutex
	servers []*http.Server
	wg      sync.WaitGroup
}

// StartRegistry listens on addr (for a lab, inst.HostAddr()+":5000") and serves until Close.
func StartRegistry(addr, user, password string) (*Registry, error) {
	if user == "" || password == "" {
		return nil, errors.New("registry: user and password are required")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r := &Registry{
		Host:    l.Addr().String(),
		handler: testenv.BasicAuth(registry.New(registry.Logger(log.New(io.Discard, "", 0))), user, password),
	}
	r.Serve(l)
	return r, nil
}

// Serve also serves the same content on l, e.g. a listener made inside the Dagger engine's network
// namespace (testenv.ListenInNetns) so the engine pushes what the lab's dockerd pulls.
func (r *Registry) Serve(l net.Listener) {
	srv := &http.Server{Handler: r.handler}
	r.mu.Lock()
	r.servers = append(r.servers, srv)
	r.mu.Unlock()
	r.wg.Go(func() { _ = srv.Serve(l) })
}

// Close stops every listener and drops the registry's contents.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	servers := r.servers
	r.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	r.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registry %s: close: %w", r.Host, err)
	}
	return nil
}
