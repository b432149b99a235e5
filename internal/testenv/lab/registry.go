package lab

import (
	"errors"
	"fmt"
	"net"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// Registry is an in-memory OCI registry (testenv.Registry) behind HTTP basic auth, the way ECR
// takes its token: user "AWS", password the token. Plain HTTP: the lab's dockerd lists it in
// insecure-registries (it tries https first, then falls back: pitfall 8). Serve adds a listener,
// e.g. one made inside the Dagger engine's network namespace (testenv.ListenInNetns) so the engine
// pushes what the lab's dockerd pulls; Close stops every listener and drops the contents.
type Registry struct {
	*testenv.Registry
	Host string // host:port of the first listener, the registry part of image references
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
	r := &Registry{Registry: testenv.NewRegistry(user, password), Host: l.Addr().String()}
	r.Serve(l)
	return r, nil
}
