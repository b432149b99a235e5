package runtag_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/runtag"
)

var at = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestRunTags(t *testing.T) {
	r := runtag.Run{ID: "r1", App: "app", GitSHA: "abc1234", CreatedAt: at, Lifetime: 30 * time.Minute}
	got := map[string]string{}
	for _, tag := range r.Tags() {
		got[tag.Key] = tag.Value
	}
	want := map[string]string{
		"Name": "deploydrill-r1", runtag.KeyRunID: "r1", runtag.KeyApp: "app", runtag.KeyGitSHA: "abc1234",
		runtag.KeyCreatedBy: "deploydrill", runtag.KeyCreatedAt: "2025-06-01T12:00:00Z", runtag.KeyExpiresAt: "2025-06-01T12:30:00Z",
	}
	if len(got) != len(want) {
		t.Errorf("tags %v, want %v", got, want)
	}
	// EC2 tag values allow letters, digits, spaces and _ . : / = + - @ only.
	allowed := regexp.MustCompile(`^[\p{L}\p{N} _.:/=+\-@]*$`)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("tag %s = %q, want %q", k, got[k], v)
		}
		if !allowed.MatchString(got[k]) {
			t.Errorf("tag %s = %q has characters EC2 refuses", k, got[k])
		}
	}
}

func TestRunValidate(t *testing.T) {
	ok := runtag.Run{ID: runtag.NewID(at), CreatedAt: at, Lifetime: time.Minute}
	if err := ok.Validate(); err != nil {
		t.Errorf("a fresh id is invalid: %v", err)
	}
	for name, r := range map[string]runtag.Run{
		"an empty id":         {CreatedAt: at, Lifetime: time.Minute},
		"an uppercase id":     {ID: "Run1", CreatedAt: at, Lifetime: time.Minute},
		"a too long id":       {ID: "r123456789012345678901234567890123456789012345678", CreatedAt: at, Lifetime: time.Minute},
		"no creation time":    {ID: "r1", Lifetime: time.Minute},
		"no lifetime":         {ID: "r1", CreatedAt: at},
		"a negative lifetime": {ID: "r1", CreatedAt: at, Lifetime: -time.Minute},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("%s passed validation", name)
		}
	}
}

func TestSelectorMatch(t *testing.T) {
	tags := func(run, created, expires string) map[string]string {
		return map[string]string{runtag.KeyCreatedBy: "deploydrill", runtag.KeyRunID: run, runtag.KeyCreatedAt: created, runtag.KeyExpiresAt: expires}
	}
	old := tags("old", "2025-06-01T10:00:00Z", "2025-06-01T10:30:00Z")
	recent := tags("new", "2025-06-01T11:50:00Z", "2025-06-01T12:20:00Z")
	foreign := map[string]string{runtag.KeyRunID: "old"}
	tests := []struct {
		name string
		sel  runtag.Selector
		tags map[string]string
		want bool
	}{
		{"all picks any run of ours", runtag.Selector{}, recent, true},
		{"nothing without the created-by mark", runtag.Selector{}, foreign, false},
		{"one run", runtag.Selector{RunID: "old"}, recent, false},
		{"older than an hour picks the old run", runtag.Selector{OlderThan: time.Hour, Now: at}, old, true},
		{"older than an hour skips the recent one", runtag.Selector{OlderThan: time.Hour, Now: at}, recent, false},
		{"expired picks what passed expires-at", runtag.Selector{Expired: true, Now: at}, old, true},
		{"expired skips what has not", runtag.Selector{Expired: true, Now: at}, recent, false},
		{"expired skips what has no expires-at", runtag.Selector{Expired: true, Now: at}, map[string]string{runtag.KeyCreatedBy: "deploydrill"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sel.Match(tt.tags, time.Time{}); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	if !(runtag.Selector{OlderThan: time.Hour, Now: at}).Match(map[string]string{runtag.KeyCreatedBy: "deploydrill"}, at.Add(-2*time.Hour)) {
		t.Error("without a created-at tag the resource's own creation time must count")
	}
}
