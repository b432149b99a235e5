// Package runtag names one drill run and the tags every AWS resource of that run carries, so
// teardown finds what a run created and sweep finds what any run left behind.
package runtag

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// Tag keys set at creation on every resource. IAM conditions key on CreatedBy (see infra/iam).
const (
	KeyRunID     = "deploydrill:run-id"
	KeyApp       = "deploydrill:app"
	KeyGitSHA    = "deploydrill:git-sha"
	KeyCreatedBy = "deploydrill:created-by"
	KeyCreatedAt = "deploydrill:created-at"
	KeyExpiresAt = "deploydrill:expires-at"
	// KeyEphemeral marks a repository that its run may delete; persistent ones hold the inventory.
	KeyEphemeral = "deploydrill:ephemeral"
	// KeyName is the console's display name.
	KeyName = "Name"

	// CreatedBy is the value of KeyCreatedBy: the mark sweep and the IAM policy look for.
	CreatedBy = "deploydrill"
)

var runIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,47}$`)

// Run identifies one drill run and everything it creates.
type Run struct {
	ID        string    // lowercase letters, digits and dashes; part of resource names
	App       string    // e.g. "deploydrill-app"
	GitSHA    string    // the commit under test
	CreatedAt time.Time // when the run started
	// Lifetime bounds how long the run's resources may live; expires-at = CreatedAt + Lifetime.
	Lifetime time.Duration
}

// NewID returns a run id that sorts by time and is unique enough for concurrent runs:
// 20250102-150405-3f2a.
func NewID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// CheckID reports a run id that cannot name or tag AWS resources.
func CheckID(id string) error {
	if !runIDPattern.MatchString(id) {
		return fmt.Errorf("run id %q: want 1-48 lowercase letters, digits or dashes", id)
	}
	return nil
}

// Validate reports a run that cannot name or tag AWS resources.
func (r Run) Validate() error {
	if err := CheckID(r.ID); err != nil {
		return err
	}
	switch {
	case r.CreatedAt.IsZero():
		return fmt.Errorf("run %s: creation time not set", r.ID)
	case r.Lifetime <= 0:
		return fmt.Errorf("run %s: lifetime must be positive, got %s", r.ID, r.Lifetime)
	}
	return nil
}

// ResourceName is the name of the run's security group and key pair.
func (r Run) ResourceName() string { return "deploydrill-" + r.ID }

// ExpiresAt is when the run's resources are overdue.
func (r Run) ExpiresAt() time.Time { return r.CreatedAt.Add(r.Lifetime) }

// Tags are the run's tags in a stable order (AWS tag values allow letters, digits and _.:/=+-@).
func (r Run) Tags() []Tag {
	tags := []Tag{
		{KeyName, r.ResourceName()},
		{KeyRunID, r.ID},
		{KeyCreatedBy, CreatedBy},
		{KeyCreatedAt, r.CreatedAt.UTC().Format(time.RFC3339)},
		{KeyExpiresAt, r.ExpiresAt().UTC().Format(time.RFC3339)},
	}
	if r.App != "" {
		tags = append(tags, Tag{KeyApp, r.App})
	}
	if r.GitSHA != "" {
		tags = append(tags, Tag{KeyGitSHA, r.GitSHA})
	}
	return tags
}

// Tag is one key/value pair; each service package converts it to its SDK's type.
type Tag struct{ Key, Value string }
