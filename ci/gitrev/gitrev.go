// Package gitrev names a build after the commit it came from. A dirty work tree never yields a
// clean commit's name: its tag says "-dirty" plus a hash of the uncommitted changes, so two
// different dirty builds never claim the same immutable tag.
package gitrev

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ShortLen is the length of the short SHA used as the image tag (like flask-app:a1b2c3d).
const ShortLen = 7

// Revision describes the work tree a build comes from.
type Revision struct {
	SHA       string // full commit SHA
	Dirty     bool   // uncommitted or untracked (not ignored) changes exist
	DirtyHash string // short hash of those changes, when Dirty
}

// Short is the abbreviated commit SHA.
func (r Revision) Short() string {
	if len(r.SHA) < ShortLen {
		return r.SHA
	}
	return r.SHA[:ShortLen]
}

// Tag is the immutable image tag and the version the app reports: a1b2c3d, or
// a1b2c3d-dirty.0f1e2d3 for a dirty tree.
func (r Revision) Tag() string {
	if r.Dirty {
		return r.Short() + "-dirty." + r.DirtyHash
	}
	return r.Short()
}

// Read inspects the git work tree containing dir.
func Read(ctx context.Context, dir string) (Revision, error) {
	sha, err := git(ctx, dir, "rev-parse", "--verify", "HEAD")
	if err != nil {
		return Revision{}, fmt.Errorf("read git revision: %w", err)
	}
	status, err := git(ctx, dir, "status", "--porcelain", "--untracked-files=all")
	if err != nil {
		return Revision{}, fmt.Errorf("read git status: %w", err)
	}
	rev := Revision{SHA: strings.TrimSpace(sha)}
	if strings.TrimSpace(status) == "" {
		return rev, nil
	}
	rev.Dirty = true
	if rev.DirtyHash, err = changesHash(ctx, dir); err != nil {
		return Revision{}, err
	}
	return rev, nil
}

// changesHash hashes the diff against HEAD and the content of untracked files.
func changesHash(ctx context.Context, dir string) (string, error) {
	h := sha256.New()
	diff, err := git(ctx, dir, "diff", "HEAD", "--binary")
	if err != nil {
		return "", fmt.Errorf("hash uncommitted changes: %w", err)
	}
	io.WriteString(h, diff)
	top, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("hash uncommitted changes: %w", err)
	}
	untracked, err := git(ctx, dir, "ls-files", "--others", "--exclude-standard", "-z")
	if err != nil {
		return "", fmt.Errorf("hash uncommitted changes: %w", err)
	}
	for _, name := range strings.Split(strings.TrimRight(untracked, "\x00"), "\x00") {
		if name == "" {
			continue
		}
		io.WriteString(h, "\x00"+name+"\x00")
		if data, err := os.ReadFile(filepath.Join(strings.TrimSpace(top), name)); err == nil {
			h.Write(data)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:ShortLen], nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
