package localstore

import (
	"bytes"
	"errors"
	"github.com/deploydrill/deploydrill/internal/retention"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

func newStore(t *testing.T) (*Store, *time.Time) {
	t.Helper()
	s, err := Open(t.TempDir(), "flask-app")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { now = now.Add(time.Minute); return now }
	return s, &now
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestTagsAreImmutable(t *testing.T) {
	s, _ := newStore(t)
	img := randomImage(t)
	first, err := s.AddImage(img, "a1b2c3d")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AddImage(img, "a1b2c3d")
	if err != nil || again != first {
		t.Fatalf("re-adding the same digest is a no-op: %v %+v", err, again)
	}
	if _, err := s.AddImage(randomImage(t), "a1b2c3d"); !errors.Is(err, ErrTagExists) {
		t.Fatalf("a different digest under an existing tag is refused, got %v", err)
	}
	if first.Ref != "flask-app@"+first.Digest || first.Version != "a1b2c3d" {
		t.Errorf("image = %+v", first)
	}
}

func TestVerifiedIsASecondTagAndListIsNewestFirst(t *testing.T) {
	s, _ := newStore(t)
	for _, tag := range []string{"old", "mid", "new"} {
		if _, err := s.AddImage(randomImage(t), tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkVerified(t.Context(), "mid"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkVerified(t.Context(), "mid"); err != nil {
		t.Fatalf("marking twice is fine: %v", err)
	}
	if err := s.MarkVerified(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown tag: %v", err)
	}
	records, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range records {
		got = append(got, r.Tag+map[bool]string{true: "+", false: ""}[r.Verified])
	}
	if want := "new mid+ old"; joined(got) != want {
		t.Errorf("list = %q, want %q", joined(got), want)
	}
	mid, _ := s.Resolve(t.Context(), "mid")
	if mark, err := s.Resolve(t.Context(), retention.VerifiedTag("mid")); err != nil || mark.Digest != mid.Digest {
		t.Errorf("verified-mid points at mid's digest: %v %+v", err, mark)
	}
}

func TestRetainKeepsNamedAndNewestVerified(t *testing.T) {
	s, _ := newStore(t)
	digests := map[string]string{}
	for _, tag := range []string{"v1", "v2", "v3", "v4", "v5"} {
		img, err := s.AddImage(randomImage(t), tag)
		if err != nil {
			t.Fatal(err)
		}
		digests[img.Digest] = tag
	}
	for _, tag := range []string{"v1", "v2", "v3"} {
		s.MarkVerified(t.Context(), tag)
	}
	out, err := s.Retain(t.Context(), retention.Policy{Keep: []string{"v5"}, KeepVerified: 2})
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, d := range out.Removed {
		removed = append(removed, digests[d])
	}
	if joined(removed) != "v1 v4" {
		t.Errorf("removed %q, want v1 v4 (v5 kept by name, v3 v2 newest verified)", joined(removed))
	}
	if _, err := s.Resolve(t.Context(), "v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("v1 is gone: %v", err)
	}
	blobs, _ := os.ReadDir(filepath.Join(s.Dir(), "blobs", "sha256"))
	if len(blobs) != 3*4 { // manifest, config, 2 layers for each of 3 images
		t.Errorf("%d blobs left, want 12: unreferenced blobs are collected", len(blobs))
	}
}

func TestRetainKeepVerifiedZeroKeepsOnlyTheNamedImages(t *testing.T) {
	s, _ := newStore(t)
	for _, tag := range []string{"v1", "v2"} {
		if _, err := s.AddImage(randomImage(t), tag); err != nil {
			t.Fatal(err)
		}
		s.MarkVerified(t.Context(), tag)
	}
	if _, err := s.Retain(t.Context(), retention.Policy{Keep: []string{"v2"}}); err != nil {
		t.Fatal(err)
	}
	records, _ := s.List(t.Context())
	if len(records) != 1 || records[0].Tag != "v2" {
		t.Errorf("left %+v, want only v2: keep-verified 0 keeps no other verified image", records)
	}
}

func TestWriteArchiveRoundTrips(t *testing.T) {
	s, _ := newStore(t)
	stored, err := s.AddImage(randomImage(t), "a1b2c3d")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.WriteArchive("a1b2c3d", &buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	os.WriteFile(path, buf.Bytes(), 0o644)

	other, _ := newStore(t)
	copied, err := other.AddArchive(path, "a1b2c3d")
	if err != nil {
		t.Fatal(err)
	}
	if copied.Digest != stored.Digest {
		t.Errorf("digest changed through an archive: %s -> %s", stored.Digest, copied.Digest)
	}
}

func joined(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}
