package drill

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

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
			return Record{}, fmt.Errorf("rollback to %q: the inventory is empty", want)
		}
		return Record{}, fmt.Errorf("rollback to %q: no such image in the inventory (have %s)", want, listTags(records))
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
