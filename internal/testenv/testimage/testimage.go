// Package testimage builds a tiny OCI image for tests that need something to deploy: a static Go
// HTTP server (./httpd) that reports a version on /health, like the real app, without Python,
// Dagger or network. Images for different versions share one layer and differ only in config.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Port is where the image's server listens inside the container.
const Port = 5000

const serverPackage = "github.com/deploydrill/deploydrill/internal/testenv/testimage/httpd"

var (
	buildMu sync.Mutex
	layer   v1.Layer // built once per process
)

// Build returns a linux image whose /health reports version. The first call compiles the server
// (CGO_ENABLED=0, a few hundred ms with a warm build cache); the go command must run inside this
// module, as it does under `go test`.
func Build(ctx context.Context, version string) (v1.Image, error) {
	l, err := serverLayer(ctx)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, fmt.Errorf("test image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("test image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Entrypoint:   []string{"/httpd"},
		Env:          []string{"VERSION=" + version, fmt.Sprintf("PORT=%d", Port)},
		ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", Port): {}},
		Labels:       map[string]string{"org.opencontainers.image.version": version},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("test image: %w", err)
	}
	return img, nil
}

func serverLayer(ctx context.Context) (v1.Layer, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if layer != nil {
		return layer, nil
	}
	dir, err := os.MkdirTemp("", "testimage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "httpd")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, serverPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("test image: go build %s: %w: %s", serverPackage, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	// A fixed timestamp keeps the layer digest the same from run to run.
	hdr := &tar.Header{Name: "httpd", Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	l, err := tarballLayer(tarball.Bytes())
	if err != nil {
		return nil, fmt.Errorf("test image: %w", err)
	}
	layer = l
	return l, nil
}

func tarballLayer(b []byte) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}
