package runtag

import (
	"fmt"
	"time"
)

// Selector chooses which of this tool's resources a sweep removes. The zero value selects all.
type Selector struct {
	RunID     string        // only this run
	OlderThan time.Duration // only resources created more than this long before Now
	Expired   bool          // only resources past their expires-at tag
	Now       time.Time     // reference time for OlderThan and Expired
}

// Match reports whether a resource with these tags belongs to this tool and is selected.
// created is the resource's own creation time, used when the created-at tag is missing.
func (s Selector) Match(tags map[string]string, created time.Time) bool {
	if tags[KeyCreatedBy] != CreatedBy {
		return false
	}
	if s.RunID != "" && tags[KeyRunID] != s.RunID {
		return false
	}
	if s.OlderThan > 0 {
		if at, err := time.Parse(time.RFC3339, tags[KeyCreatedAt]); err == nil {
			created = at
		}
		if created.IsZero() || s.Now.Sub(created) < s.OlderThan {
			return false
		}
	}
	if s.Expired {
		at, err := time.Parse(time.RFC3339, tags[KeyExpiresAt])
		if err != nil || !s.Now.After(at) {
			return false
		}
	}
	return true
}

// String describes the selection for logs: "run 2025..-ab12, older than 2h0m0s".
func (s Selector) String() string {
	out := "all runs"
	if s.RunID != "" {
		out = "run " + s.RunID
	}
	if s.OlderThan > 0 {
		out += fmt.Sprintf(", older than %s", s.OlderThan)
	}
	if s.Expired {
		out += ", expired"
	}
	return out
}
