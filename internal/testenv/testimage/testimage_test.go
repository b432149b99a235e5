package testimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestBuild(t *testing.T) {
	v1img, err := Build(t.Context(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	v2img, err := Build(t.Context(), "v2")
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := v1img.Digest()
	d2, _ := v2img.Digest()
	if d1 == d2 {
		t.Errorf("two versions share digest %s", d1)
	}
	again, _ := Build(t.Context(), "v1")
	if d, _ := again.Digest(); d != d1 {
		t.Errorf("rebuilding v1 gave %s, then %s: the image is not reproducible", d1, d)
	}
	cf, err := v1img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Config.Entrypoint[0] != "/httpd" || !strings.Contains(strings.Join(cf.Config.Env, " "), "VERSION=v1") {
		t.Errorf("config = %+v", cf)
	}
	layers, err := v1img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
	if size, _ := layers[0].Size(); size > 8<<20 {
		t.Errorf("layer is %d bytes compressed; the point is a tiny image", size)
	}
	assertStaticBinary(t, layers[0])
}

// assertStaticBinary checks the layer's only file is an ELF with no dynamic loader: the image has
// no libc to load one.
func assertStaticBinary(t *testing.T, layer v1.Layer) {
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "httpd" || hdr.Mode&0o111 == 0 {
		t.Fatalf("first entry = %+v, %v; want executable httpd", hdr, err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("httpd is not ELF: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("httpd asks for a dynamic loader")
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("the layer holds more than httpd (next: %v)", err)
	}
}
