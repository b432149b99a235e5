// Command baseimage packs a Debian rootfs tarball into a one-layer image tarball (docker format,
// which Dagger's Container.Import and `docker load` both take). Test machinery: it exists because
// this machine cannot pull python:3.12-slim.
package main

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	rootfs := flag.String("rootfs", "", "rootfs tarball (from mmdebstrap)")
	out := flag.String("out", "", "image tarball to write")
	tag := flag.String("tag", "deploydrill/python-base:bookworm", "tag recorded in the tarball")
	flag.Parse()
	if err := run(*rootfs, *out, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "baseimage:", err)
		os.Exit(1)
	}
}

func run(rootfs, out, tag string) error {
	if rootfs == "" || out == "" {
		return errors.New("-rootfs and -out are required")
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("parse tag: %w", err)
	}
	filtered := filepath.Join(filepath.Dir(out), "layer.tar")
	if err := filterRootfs(rootfs, filtered); err != nil {
		return err
	}
	defer os.Remove(filtered)
	layer, err := tarball.LayerFromFile(filtered)
	if err != nil {
		return fmt.Errorf("layer from %s: %w", filtered, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	img, err = mutate.Config(img, v1.Config{
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"LANG=C.UTF-8",
		},
		Cmd: []string{"python3"},
	})
	if err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf.Architecture, cf.OS = "amd64", "linux"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// filterRootfs copies the rootfs tar without device nodes and the contents of /dev, /proc and
// /sys: a container runtime provides those, and device nodes in a layer break unprivileged unpacking.
func filterRootfs(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	outFile, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer outFile.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(outFile)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock || hdr.Typeflag == tar.TypeFifo {
			continue
		}
		if underAny(name, "dev/", "proc/", "sys/") {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

func underAny(name string, dirs ...string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(name, d) && name != d {
			return true
		}
	}
	return false
}
