package pipeline

import (
	"context"
	"fmt"
	"strings"

	"dagger.io/dagger"
)

// Registry is where Publish pushes. The password is a Dagger secret: it never reaches argv,
// logs or the report.
type Registry struct {
	Repository string // host[:port]/path, e.g. 123.dkr.ecr.eu-west-1.amazonaws.com/flask-app
	Username   string
	Password   *dagger.Secret // nil for an anonymous registry
}

// Host is the registry host part of the repository.
func (r Registry) Host() string {
	host, _, _ := strings.Cut(r.Repository, "/")
	return host
}

// Publish pushes img as repository:tag and returns the digest-pinned reference repository@sha256:...
func Publish(ctx context.Context, img *dagger.Container, reg Registry, tag string) (string, error) {
	if reg.Password != nil {
		img = img.WithRegistryAuth(reg.Host(), reg.Username, reg.Password)
	}
	address := reg.Repository + ":" + tag
	pushed, err := img.Publish(ctx, address)
	if err != nil {
		return "", fmt.Errorf("publish %s: %w", address, err)
	}
	_, digest, ok := strings.Cut(pushed, "@")
	if !ok || !strings.HasPrefix(digest, "sha256:") {
		return "", fmt.Errorf("publish %s: registry returned %q, not a digest reference", address, pushed)
	}
	return reg.Repository + "@" + digest, nil
}
