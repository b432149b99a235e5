package gitrev

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Commit resolves rev (a SHA or a prefix of one, a tag, HEAD^) in the repository containing
// dir to a clean Revision: a commit is never dirty.
func Commit(ctx context.Context, dir, rev string) (Revision, error) {
	sha, err := git(ctx, dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return Revision{}, fmt.Errorf("git revision %q: not a commit in this repository", rev)
	}
	return Revision{SHA: strings.TrimSpace(sha)}, nil
}

// Export writes the tree of dir's directory at commit sha into dest (which must exist), from
// git's object store: the work tree, its uncommitted changes and its index are never read or
// touched. It is what the pipeline builds an older version from.
func Export(ctx context.Context, dir, sha, dest string) error {
	prefix, err := git(ctx, dir, "rev-parse", "--show-prefix")
	if err != nil {
		return fmt.Errorf("export %s: %w", sha, err)
	}
	top, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return fmt.Errorf("export %s: %w", sha, err)
	}
	tree := sha + ":" + strings.TrimSpace(prefix)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", "-C", strings.TrimSpace(top), "archive", "--format=tar", tree)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("export %s: git archive %s: %w: %s", sha, tree, err, strings.TrimSpace(stderr.String()))
	}
	if err := untar(&stdout, dest); err != nil {
		return fmt.Errorf("export %s: %w", sha, err)
	}
	return nil
}

// untar extracts regular files and directories of a git archive under dest.
func untar(r io.Reader, dest string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue // git archive never writes these; refuse them anyway
		}
		path := filepath.Join(dest, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, path); err != nil {
				return err
			}
		}
	}
}
