package localstore

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// WriteArchive writes the image stored under tag as a one-image OCI archive, the form
// Dagger's Container.Import takes. Blobs are streamed from the store, not copied to disk.
func (s *Store) WriteArchive(tag string, w io.Writer) error {
	d, ok, err := s.find(tag)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("archive %s:%s: %w", s.name, tag, ErrNotFound)
	}
	img, err := s.path.Image(d.Digest)
	if err != nil {
		return fmt.Errorf("archive %s:%s: %w", s.name, tag, err)
	}
	blobs, err := imageBlobs(img, d.Digest)
	if err != nil {
		return fmt.Errorf("archive %s:%s: %w", s.name, tag, err)
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: d.MediaType, Size: d.Size, Digest: d.Digest,
			Annotations: map[string]string{refNameAnnotation: tag},
		}},
	})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := writeBytes(tw, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := writeBytes(tw, "index.json", index); err != nil {
		return err
	}
	for _, h := range blobs {
		if err := s.writeBlob(tw, h); err != nil {
			return fmt.Errorf("archive %s:%s: %w", s.name, tag, err)
		}
	}
	return tw.Close()
}

func imageBlobs(img v1.Image, manifest v1.Hash) ([]v1.Hash, error) {
	cfg, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	blobs := []v1.Hash{manifest, cfg}
	seen := map[v1.Hash]bool{manifest: true, cfg: true}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return nil, err
		}
		if !seen[h] {
			seen[h] = true
			blobs = append(blobs, h)
		}
	}
	return blobs, nil
}

func (s *Store) writeBlob(tw *tar.Writer, h v1.Hash) error {
	path := filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: "blobs/" + h.Algorithm + "/" + h.Hex, Mode: 0o644, Size: info.Size(), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

func writeBytes(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
