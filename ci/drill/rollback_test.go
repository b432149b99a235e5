package drill_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

func TestChooseRollback(t *testing.T) {
	v := drill.Image{Ref: "app@sha256:ccc", Tag: "c3c3c3c", Version: "c3c3c3c", Digest: "sha256:ccc"}
	day := func(n int) time.Time { return base.AddDate(0, 0, n) }
	rec := func(tag, digest string, pushed time.Time, verified bool) drill.Record {
		return drill.Record{Tag: tag, Digest: digest, PushedAt: pushed, Verified: verified}
	}
	inventory := []drill.Record{
		rec("a1a1a1a", "sha256:aaa", day(-3), true),
		rec("b2b2b2b", "sha256:bbb", day(-2), true),
		rec("b2b2fff", "sha256:bff", day(-1), false),
		rec("c3c3c3c", "sha256:ccc", day(0), false),
	}
	tests := []struct {
		name     string
		records  []drill.Record
		explicit string
		kind     drill.RollbackKind
		tag      string
		reason   string // substring
		err      string // substring; set for errors
	}{
		{"the most recent verified image that is not V wins", inventory, "", drill.RollbackVerified, "b2b2b2b", "most recent verified image that is not V (pushed 2025-05-30 12:00:00Z)", ""},
		{"V being verified and newest does not make it K", append(inventory[:3:3], rec("c3c3c3c", "sha256:ccc", day(0), true)), "", drill.RollbackVerified, "b2b2b2b", "", ""},
		{"another tag on V's digest is V", []drill.Record{rec("a1a1a1a", "sha256:aaa", day(-3), true), rec("alias", "sha256:ccc", day(-1), true)}, "", drill.RollbackVerified, "a1a1a1a", "", ""},
		{"equal push times break the tie by tag, deterministically", []drill.Record{rec("x", "sha256:x", day(-1), true), rec("y", "sha256:y", day(-1), true)}, "", drill.RollbackVerified, "y", "", ""},
		{"without verified images V is re-created", inventory[2:], "", drill.RollbackRecreate, "c3c3c3c", "no image other than V has passed a drill yet, so the rollback re-creates V", ""},
		{"an empty inventory re-creates V", nil, "", drill.RollbackRecreate, "c3c3c3c", "the inventory is empty", ""},
		{"an explicit tag wins over a newer verified one", inventory, "a1a1a1a", drill.RollbackExplicit, "a1a1a1a", "requested explicitly; verified by an earlier drill", ""},
		{"an explicit unverified tag is allowed and said so", inventory, "b2b2fff", drill.RollbackExplicit, "b2b2fff", "not verified", ""},
		{"an explicit unique prefix resolves", inventory, "a1a1", drill.RollbackExplicit, "a1a1a1a", "", ""},
		{"an explicit full SHA resolves to its short tag", inventory, "a1a1a1a0123456789abcdef0123456789abcdef", drill.RollbackExplicit, "a1a1a1a", "", ""},
		{"an explicit V re-creates V", inventory, "c3c3c3c", drill.RollbackExplicit, "c3c3c3c", "it is V itself", ""},
		{"an explicit ambiguous prefix is an error", inventory, "b2b2", "", "", "", `"b2b2": ambiguous`},
		{"an explicit too-short prefix is not guessed", inventory, "a1", "", "", "", `rollback to "a1": no such image in the inventory (have c3c3c3c, b2b2fff, b2b2b2b, a1a1a1a)`},
		{"an explicit tag in an empty inventory is an error", nil, "a1a1a1a", "", "", "", "the inventory is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := drill.ChooseRollback(v, tt.records, tt.explicit)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.kind || got.Tag != tt.tag || !strings.Contains(got.Reason, tt.reason) {
				t.Fatalf("got %+v, want %s %s with reason containing %q", got, tt.kind, tt.tag, tt.reason)
			}
		})
	}
}

func TestChooseRollbackListsAtMostFiveTags(t *testing.T) {
	var records []drill.Record
	for i := range 8 {
		records = append(records, drill.Record{Tag: string(rune('a'+i)) + "000000", PushedAt: base.Add(time.Duration(i) * time.Hour)})
	}
	_, err := drill.ChooseRollback(image("v"), records, "zzzzzz")
	if err == nil || !strings.HasSuffix(err.Error(), "(have h000000, g000000, f000000, e000000, d000000, and 3 more)") {
		t.Fatalf("err %v", err)
	}
}
