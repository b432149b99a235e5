package drill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNotInInventory: the explicit rollback tag names no image of the inventory (the CLI then
// tries it as a git revision to build).
var ErrNotInInventory = errors.New("no such image in the inventory")

// minPrefix is the shortest tag prefix Config.RollbackTo may use, like git's short SHAs.
const minPrefix = 4

// ChooseRollback picks K, the image the drill rolls back to, from the inventory's records:
//   - explicit (Config.RollbackTo) wins: an exact tag, or a unique prefix of one, or a longer
//     string one tag is a prefix of (a full SHA for a short-SHA tag); unknown is an error;
//   - otherwise the most recently pushed verified image that is not V (by tag or digest);
//   - otherwise V itself, re-created, and the reason says so.
//
// It is a pure function: the drill resolves the chosen tag through the Inventory.
func ChooseRollback(v Image, records []Record, explicit string) (RollbackChoice, error) {
	if explicit != "" {
		r, err := findTag(records, explicit)
		if err != nil {
			return RollbackChoice{}, err
		}
		reason := "requested explicitly"
		switch {
		case isImage(r, v):
			reason += "; it is V itself, so the rollback re-creates V"
		case r.Verified:
			reason += "; verified by an earlier drill"
		default:
			reason += "; not verified by an earlier drill"
		}
		return RollbackChoice{Kind: RollbackExplicit, Tag: r.Tag, Reason: reason}, nil
	}
	var candidates []Record
	for _, r := range records {
		if r.Verified && !isImage(r, v) {
			candidates = append(candidates, r)
		}
	}
	if len(candidates) == 0 {
		why := "the inventory is empty"
		if len(records) > 0 {
			why = "no image other than V has passed a drill yet"
		}
		return RollbackChoice{Kind: RollbackRecreate, Tag: v.Tag, Reason: why + ", so the rollback re-creates V"}, nil
	}
	k := slices.MaxFunc(candidates, func(a, b Record) int {
		return cmp.Or(a.PushedAt.Compare(b.PushedAt), strings.Compare(a.Tag, b.Tag))
	})
	return RollbackChoice{Kind: RollbackVerified, Tag: k.Tag,
		Reason: fmt.Sprintf("most recent verified image that is not V (pushed %s)", k.PushedAt.UTC().Format("2006-01-02 15:04:05Z"))}, nil
}

// isImage reports whether r is v: the same tag, or the same artifact under another tag.
func isImage(r Record, v Image) bool {
	return r.Tag == v.Tag || (v.Digest != "" && r.Digest == v.Digest)
}

func findTag(records []Record, want string) (Record, error) {
	for _, r := range records {
		if r.Tag == want {
			return r, nil
		}
	}
	var matches []Record
	for _, r := range records {
		if len(want) >= minPrefix && strings.HasPrefix(r.Tag, want) || len(r.Tag) >= minPrefix && strings.HasPrefix(want, r.Tag) {
			matches = append(matches, r)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		if len(records) == 0 {
			return Record{}, fmt.Errorf("rollback to %q: %w: the inventory is empty", want, ErrNotInInventory)
		}
		return Record{}, fmt.Errorf("rollback to %q: %w (have %s)", want, ErrNotInInventory, listTags(records))
	}
	return Record{}, fmt.Errorf("rollback to %q: ambiguous, matches %s", want, listTags(matches))
}

// listTags names up to five of the most recent tags for an error message.
func listTags(records []Record) string {
	sorted := slices.SortedFunc(slices.Values(records), func(a, b Record) int { return b.PushedAt.Compare(a.PushedAt) })
	var tags []string
	for _, r := range sorted[:min(5, len(sorted))] {
		tags = append(tags, r.Tag)
	}
	if len(sorted) > 5 {
		tags = append(tags, fmt.Sprintf("and %d more", len(sorted)-5))
	}
	return strings.Join(tags, ", ")
}

// Rollback is K, the image the drill rolls back to, and why it was chosen.
type Rollback struct {
	Image  Image // empty until V is published when the choice is to re-create V
	Choice RollbackChoice
	// VerifiedV: the inventory already marks V verified (an earlier drill), so the drill does
	// not mark it again.
	VerifiedV bool
	// Verify: no drill has verified K yet (it was just built from git), so the drill proves it
	// healthy, and marks it verified, before V is deployed: a rollback goes only to known-good.
	Verify bool
}

// PickRollback chooses K for V from the inventory and resolves it: once per run, before
// anything is built or booted, so a bad --rollback-to costs nothing and the target can prepare
// K while V is built. V's digest may not be known yet; its tag is.
func PickRollback(ctx context.Context, inv Inventory, v Image, explicit string) (Rollback, error) {
	var records []Record
	if inv != nil {
		var err error
		if records, err = inv.List(ctx); err != nil {
			return Rollback{}, fmt.Errorf("list inventory: %w", err)
		}
	} else if explicit != "" {
		return Rollback{}, fmt.Errorf("rollback to %q: no inventory to find it in", explicit)
	}
	choice, err := ChooseRollback(v, records, explicit)
	if err != nil {
		return Rollback{}, err
	}
	rb := Rollback{Choice: choice}
	for _, rec := range records {
		if rec.Tag == v.Tag && rec.Verified {
			rb.VerifiedV = true
		}
	}
	if choice.Tag == v.Tag {
		return rb, nil // For fills in V once it is published
	}
	if rb.Image, err = inv.Resolve(ctx, choice.Tag); err != nil {
		return Rollback{}, fmt.Errorf("resolve rollback image %s: %w", choice.Tag, err)
	}
	return rb, nil
}

// For completes the pick once V is published: a re-created V is K, and a K that turns out to
// be V's own artifact under another tag is re-created V too.
func (r Rollback) For(v Image) Rollback {
	switch {
	case r.Choice.Kind == RollbackRecreate || r.Image.Tag == "":
		r.Image = v
	case v.Digest != "" && r.Image.Digest == v.Digest:
		r.Image = v
		r.Choice.Reason += "; it is V's own artifact, so the rollback re-creates V"
	}
	return r
}
