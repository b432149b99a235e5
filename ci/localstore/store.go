// Package localstore is the local target's image inventory: an OCI image layout on disk (under
// the user's cache directory, never in the repo) with one entry per immutable tag. It behaves
// like an immutable registry: a tag, once written, never moves; "verified" is a second tag
// (verified-<tag>) on the same digest.
package localstore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/internal/retention"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

const (
	refNameAnnotation  = "org.opencontainers.image.ref.name"
	pushedAtAnnotation = "io.deploydrill.pushed-at"
)

// ErrTagExists is returned when a tag is written again with a different digest.
var ErrTagExists = errors.New("tag already exists with a different digest (tags are immutable)")

// ErrNotFound is returned for an unknown tag.
var ErrNotFound = errors.New("no such tag")

// Store is an OCI layout holding the images of one app.
type Store struct {
	dir  string
	name string // the image name shown in references, e.g. flask-app
	path layout.Path
	now  func() time.Time
}

var _ drill.Inventory = (*Store)(nil)

// Open opens (creating if needed) the store in dir.
func Open(dir, name string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", dir, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return nil, fmt.Errorf("create image store %s: %w", dir, err)
		}
	}
	return &Store{dir: dir, name: name, path: p, now: time.Now}, nil
}

// Dir is where the layout lives.
func (s *Store) Dir() string { return s.dir }

// lock serialises writers (two drills on one machine) with an advisory file lock.
func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// AddArchive stores the single image in an OCI archive (as Container.Export writes it) under tag.
// Adding the same digest again is a no-op; a different digest under an existing tag is refused.
func (s *Store) AddArchive(archive, tag string) (drill.Image, error) {
	tmp, err := os.MkdirTemp(s.dir, ".import-")
	if err != nil {
		return drill.Image{}, err
	}
	defer os.RemoveAll(tmp)
	if err := untar(archive, tmp); err != nil {
		return drill.Image{}, fmt.Errorf("read image archive %s: %w", archive, err)
	}
	img, err := singleImage(tmp)
	if err != nil {
		return drill.Image{}, fmt.Errorf("read image archive %s: %w", archive, err)
	}
	return s.AddImage(img, tag)
}

// AddImage stores img under tag (see AddArchive).
func (s *Store) AddImage(img v1.Image, tag string) (drill.Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return drill.Image{}, err
	}
	unlock, err := s.lock()
	if err != nil {
		return drill.Image{}, err
	}
	defer unlock()
	if existing, ok, err := s.find(tag); err != nil {
		return drill.Image{}, err
	} else if ok {
		if existing.Digest != digest {
			return drill.Image{}, fmt.Errorf("store %s:%s: %w", s.name, tag, ErrTagExists)
		}
		return s.image(tag, digest), nil
	}
	err = s.path.AppendImage(img, layout.WithAnnotations(map[string]string{
		refNameAnnotation:  tag,
		pushedAtAnnotation: s.now().UTC().Format(time.RFC3339Nano),
	}))
	if err != nil {
		return drill.Image{}, fmt.Errorf("store %s:%s: %w", s.name, tag, err)
	}
	return s.image(tag, digest), nil
}

func (s *Store) image(tag string, digest v1.Hash) drill.Image {
	return drill.Image{Ref: s.name + "@" + digest.String(), Tag: tag, Version: tag, Digest: digest.String()}
}

// find returns the descriptor stored under tag.
func (s *Store) find(tag string) (v1.Descriptor, bool, error) {
	descs, err := s.descriptors()
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	for _, d := range descs {
		if d.Annotations[refNameAnnotation] == tag {
			return d, true, nil
		}
	}
	return v1.Descriptor{}, false, nil
}

func (s *Store) descriptors() ([]v1.Descriptor, error) {
	idx, err := s.path.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read image store %s: %w", s.dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read image store %s: %w", s.dir, err)
	}
	return m.Manifests, nil
}

// List returns the app's images (verified marks folded into their image), newest first.
func (s *Store) List(context.Context) ([]drill.Record, error) {
	descs, err := s.descriptors()
	if err != nil {
		return nil, err
	}
	verified := map[v1.Hash]bool{}
	for _, d := range descs {
		if retention.IsMark(d.Annotations[refNameAnnotation]) {
			verified[d.Digest] = true
		}
	}
	var records []drill.Record
	for _, d := range descs {
		tag := d.Annotations[refNameAnnotation]
		if tag == "" || retention.IsMark(tag) {
			continue
		}
		pushed, _ := time.Parse(time.RFC3339Nano, d.Annotations[pushedAtAnnotation])
		records = append(records, drill.Record{Tag: tag, Digest: d.Digest.String(), PushedAt: pushed, Verified: verified[d.Digest]})
	}
	sort.SliceStable(records, func(i, j int) bool { return records[i].PushedAt.After(records[j].PushedAt) })
	return records, nil
}

// MarkVerified records that tag passed a health check, as the immutable tag verified-<tag>.
func (s *Store) MarkVerified(_ context.Context, tag string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	d, ok, err := s.find(tag)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("mark %s:%s verified: %w", s.name, tag, ErrNotFound)
	}
	mark := retention.VerifiedTag(tag)
	if _, exists, err := s.find(mark); err != nil || exists {
		return err
	}
	d.Annotations = map[string]string{
		refNameAnnotation:  mark,
		pushedAtAnnotation: s.now().UTC().Format(time.RFC3339Nano),
	}
	if err := s.path.AppendDescriptor(d); err != nil {
		return fmt.Errorf("mark %s:%s verified: %w", s.name, tag, err)
	}
	return nil
}

// Resolve turns a tag into a deployable image.
func (s *Store) Resolve(_ context.Context, tag string) (drill.Image, error) {
	d, ok, err := s.find(tag)
	if err != nil {
		return drill.Image{}, err
	}
	if !ok {
		return drill.Image{}, fmt.Errorf("resolve %s:%s: %w", s.name, tag, ErrNotFound)
	}
	return s.image(tag, d.Digest), nil
}

// Retain applies the retention rule (internal/retention) to the store: images neither kept by
// tag nor among the newest verified are deleted with all their tags, then blobs nothing refers
// to are removed.
func (s *Store) Retain(ctx context.Context, p retention.Policy) (retention.Outcome, error) {
	if err := p.Validate(); err != nil {
		return retention.Outcome{}, fmt.Errorf("retention: %w", err)
	}
	descs, err := s.descriptors()
	if err != nil {
		return retention.Outcome{}, err
	}
	byDigest := map[string]*retention.Image{}
	var images []*retention.Image
	for _, d := range descs {
		tag := d.Annotations[refNameAnnotation]
		if tag == "" {
			continue
		}
		img := byDigest[d.Digest.String()]
		if img == nil {
			img = &retention.Image{Digest: d.Digest.String()}
			byDigest[img.Digest], images = img, append(images, img)
		}
		img.Tags = append(img.Tags, tag)
		if pushed, err := time.Parse(time.RFC3339Nano, d.Annotations[pushedAtAnnotation]); err == nil && !retention.IsMark(tag) && pushed.After(img.PushedAt) {
			img.PushedAt = pushed
		}
	}
	var all []retention.Image
	for _, img := range images {
		all = append(all, *img)
	}
	var out retention.Outcome
	out.Kept, out.Removed = p.Select(all)
	if len(out.Removed) == 0 {
		return out, nil
	}
	unlock, err := s.lock()
	if err != nil {
		return retention.Outcome{}, err
	}
	defer unlock()
	drop := map[string]bool{}
	for _, d := range out.Removed {
		drop[d] = true
	}
	if err := s.path.RemoveDescriptors(func(d v1.Descriptor) bool { return drop[d.Digest.String()] }); err != nil {
		return retention.Outcome{Kept: out.Kept}, fmt.Errorf("retention in %s: %w", s.dir, err)
	}
	if err := s.collectGarbage(); err != nil {
		return out, fmt.Errorf("retention in %s: %w", s.dir, err)
	}
	return out, nil
}

// collectGarbage deletes blobs that no stored image refers to.
func (s *Store) collectGarbage() error {
	descs, err := s.descriptors()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, d := range descs {
		img, err := s.path.Image(d.Digest)
		if err != nil {
			return err
		}
		blobs, err := imageBlobs(img, d.Digest)
		if err != nil {
			return err
		}
		for _, h := range blobs {
			keep[h.Hex] = true
		}
	}
	dir := filepath.Join(s.dir, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !keep[e.Name()] {
			errs = append(errs, os.Remove(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// singleImage finds the one image in a layout directory (descending into a nested index, which
// is how BuildKit writes a single-platform export).
func singleImage(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	for depth := 0; depth < 4; depth++ {
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		if len(m.Manifests) != 1 {
			return nil, fmt.Errorf("want exactly one image, found %d entries", len(m.Manifests))
		}
		d := m.Manifests[0]
		if d.MediaType.IsImage() {
			return idx.Image(d.Digest)
		}
		if !d.MediaType.IsIndex() {
			return nil, fmt.Errorf("unexpected media type %s", d.MediaType)
		}
		if idx, err = idx.ImageIndex(d.Digest); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("index nested too deep")
}

func untar(archive, dst string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(hdr.Name)
		if filepath.IsAbs(name) || strings.HasPrefix(name, "..") {
			return fmt.Errorf("unsafe path %q in archive", hdr.Name)
		}
		target := filepath.Join(dst, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		}
	}
}
