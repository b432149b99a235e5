package pipeline

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"dagger.io/dagger"
)

// DefaultBaseImage is what the app's Dockerfile builds FROM.
const DefaultBaseImage = "python:3.12-slim"

// BaseKind says where a base image comes from.
type BaseKind string

const (
	BaseRegistry BaseKind = "registry" // a reference the engine pulls
	BaseArchive  BaseKind = "archive"  // an image tarball on this machine (docker or OCI format)
	BaseLayout   BaseKind = "layout"   // an OCI image layout directory on this machine
)

// Base is the Python base image the app is built on. Air-gapped users (and this project's own
// tests, which cannot reach any registry) pass a local tarball or layout instead of a reference.
type Base struct {
	Kind BaseKind
	Ref  string // the reference, or the local path
}

// ParseBase classifies a --base-image value: an existing file is an image tarball, an existing
// directory with an index.json is an OCI layout (an "oci-archive:" or "oci-layout:" prefix says
// so explicitly); anything else is a registry reference.
func ParseBase(value string) (Base, error) {
	if value == "" {
		value = DefaultBaseImage
	}
	for prefix, kind := range map[string]BaseKind{"oci-archive:": BaseArchive, "docker-archive:": BaseArchive, "oci-layout:": BaseLayout} {
		if path, ok := strings.CutPrefix(value, prefix); ok {
			return statBase(kind, path)
		}
	}
	info, err := os.Stat(value)
	switch {
	case err != nil:
		if strings.HasPrefix(value, "/") || strings.HasPrefix(value, ".") {
			return Base{}, fmt.Errorf("base image %s: %w", value, err)
		}
		return Base{Kind: BaseRegistry, Ref: value}, nil
	case info.IsDir():
		return statBase(BaseLayout, value)
	default:
		return statBase(BaseArchive, value)
	}
}

func statBase(kind BaseKind, path string) (Base, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Base{}, fmt.Errorf("base image %s: %w", path, err)
	}
	want := abs
	if kind == BaseLayout {
		want = filepath.Join(abs, "index.json")
	}
	if _, err := os.Stat(want); err != nil {
		return Base{}, fmt.Errorf("base image %s: not an image %s: %w", path, kind, err)
	}
	return Base{Kind: kind, Ref: abs}, nil
}

func (b Base) String() string {
	if b.Kind == BaseRegistry {
		return b.Ref
	}
	return string(b.Kind) + ":" + b.Ref
}

// Container is the lazy base container. Layouts must be turned into archives first
// (Materialize): Dagger imports files, not directories.
func (b Base) Container(c *dagger.Client) *dagger.Container {
	if b.Kind == BaseRegistry {
		return c.Container().From(b.Ref)
	}
	return c.Container().Import(c.Host().File(b.Ref))
}

// Materialize turns a layout into an OCI archive under dir; other kinds are returned unchanged.
func (b Base) Materialize(dir string) (Base, error) {
	if b.Kind != BaseLayout {
		return b, nil
	}
	f, err := os.CreateTemp(dir, "base-*.tar")
	if err != nil {
		return Base{}, fmt.Errorf("materialize base %s: %w", b.Ref, err)
	}
	defer f.Close()
	if err := tarLayout(b.Ref, f); err != nil {
		return Base{}, err
	}
	return Base{Kind: BaseArchive, Ref: f.Name()}, f.Close()
}

// tarLayout writes an OCI layout directory as an OCI archive into dst, for Container.Import.
func tarLayout(layoutDir string, dst io.Writer) error {
	tw := tar.NewWriter(dst)
	err := filepath.WalkDir(layoutDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(layoutDir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("tar layout %s: %w", layoutDir, err)
	}
	return tw.Close()
}
