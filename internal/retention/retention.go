// Package retention is the one rule for which images survive a drill, for every inventory (the
// local image store and ECR): the images tagged with one of Keep (the drill's V and K) and the
// KeepVerified most recently pushed verified images besides them survive; every other tagged
// image goes. Images are kept and removed by digest, so all of an image's tags go together.
package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// VerifiedPrefix marks a digest that passed a drill's health check: verified-<tag> is a second
// immutable tag on the same digest, so a verified mark never moves a tag.
const VerifiedPrefix = "verified-"

// VerifiedTag is the mark that says tag passed a drill.
func VerifiedTag(tag string) string { return VerifiedPrefix + tag }

// IsMark reports whether tag is a verified mark rather than a version's own tag.
func IsMark(tag string) bool { return strings.HasPrefix(tag, VerifiedPrefix) }

// DefaultKeepVerified is the --keep-verified default.
const DefaultKeepVerified = 5

// Policy says what survives. The zero Policy keeps nothing.
type Policy struct {
	Keep         []string // tags that survive whatever else happens: the drill's V and K
	KeepVerified int      // the N most recently pushed verified images besides Keep; 0 keeps none
}

// Validate refuses a policy that cannot mean anything.
func (p Policy) Validate() error {
	if p.KeepVerified < 0 {
		return fmt.Errorf("keep verified %d: must not be negative", p.KeepVerified)
	}
	return nil
}

// Image is one digest of an inventory with all its tags (verified marks included).
type Image struct {
	Digest   string
	Tags     []string
	PushedAt time.Time
}

// Verified reports whether one of the image's own tags carries its verified mark.
func (img Image) Verified() bool {
	for _, t := range img.Tags {
		if !IsMark(t) && slices.Contains(img.Tags, VerifiedTag(t)) {
			return true
		}
	}
	return false
}

// Select splits images into the digests that survive and those that go, each in input order.
func (p Policy) Select(images []Image) (keep, remove []string) {
	kept := map[string]bool{}
	var verified []Image
	for _, img := range images {
		if slices.ContainsFunc(img.Tags, func(t string) bool { return slices.Contains(p.Keep, t) }) {
			kept[img.Digest] = true
		} else if img.Verified() {
			verified = append(verified, img)
		}
	}
	slices.SortStableFunc(verified, func(a, b Image) int {
		return cmp.Or(b.PushedAt.Compare(a.PushedAt), strings.Compare(a.Digest, b.Digest))
	})
	for _, img := range verified[:min(max(p.KeepVerified, 0), len(verified))] {
		kept[img.Digest] = true
	}
	seen := map[string]bool{}
	for _, img := range images {
		if seen[img.Digest] {
			continue
		}
		seen[img.Digest] = true
		if kept[img.Digest] {
			keep = append(keep, img.Digest)
		} else {
			remove = append(remove, img.Digest)
		}
	}
	return keep, remove
}

// Outcome is what one retention run did, by digest.
type Outcome struct {
	Kept, Removed []string
}

// String summarises an outcome for logs and reports.
func (o Outcome) String() string {
	short := make([]string, len(o.Removed))
	for i, d := range o.Removed {
		d = strings.TrimPrefix(d, "sha256:")
		short[i] = d[:min(12, len(d))]
	}
	return fmt.Sprintf("kept %d, removed %d [%s]", len(o.Kept), len(o.Removed), strings.Join(short, " "))
}
