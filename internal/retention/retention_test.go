package retention

import (
	"slices"
	"testing"
	"time"
)

func TestSelect(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC) }
	v := Image{Digest: "d-v", Tags: []string{"v"}, PushedAt: at(9)}
	k := Image{Digest: "d-k", Tags: []string{"k", "verified-k"}, PushedAt: at(1)}
	old := Image{Digest: "d-old", Tags: []string{"old", "verified-old"}, PushedAt: at(2)}
	newer := Image{Digest: "d-new", Tags: []string{"new", "verified-new"}, PushedAt: at(3)}
	unverified := Image{Digest: "d-un", Tags: []string{"un"}, PushedAt: at(8)}
	all := []Image{v, k, old, newer, unverified}
	tests := []struct {
		name       string
		policy     Policy
		keep, drop []string
	}{
		{"keep verified 0 keeps only V and K", Policy{Keep: []string{"v", "k"}}, []string{"d-v", "d-k"}, []string{"d-old", "d-new", "d-un"}},
		{"keep verified 1 keeps the newest verified besides V and K", Policy{Keep: []string{"v", "k"}, KeepVerified: 1}, []string{"d-v", "d-k", "d-new"}, []string{"d-old", "d-un"}},
		{"keep verified counts beyond V and K", Policy{Keep: []string{"v", "k"}, KeepVerified: 5}, []string{"d-v", "d-k", "d-old", "d-new"}, []string{"d-un"}},
		{"an empty policy keeps nothing", Policy{}, nil, []string{"d-v", "d-k", "d-old", "d-new", "d-un"}},
		{"a mark alone does not make a verified image", Policy{KeepVerified: 5}, []string{"d-k", "d-old", "d-new"}, []string{"d-v", "d-un"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep, drop := tt.policy.Select(all)
			if !slices.Equal(keep, tt.keep) || !slices.Equal(drop, tt.drop) {
				t.Errorf("Select = keep %v, remove %v; want keep %v, remove %v", keep, drop, tt.keep, tt.drop)
			}
		})
	}
}

func TestVerifiedNeedsTheMarkOfItsOwnTag(t *testing.T) {
	img := Image{Digest: "d", Tags: []string{"a", "verified-b"}}
	if img.Verified() {
		t.Error("an image marked for another tag counts as verified")
	}
	if (Policy{KeepVerified: -1}).Validate() == nil {
		t.Error("a negative KeepVerified is accepted")
	}
}
