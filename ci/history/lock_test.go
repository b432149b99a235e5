//go:build unix

package history_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestAppendWaitsForTheLockOnlyAsLongAsItsContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	content := line(t, 1) + "\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	holder, err := os.Open(path) // another drill, in the middle of its append
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = openFile(t, path).Append(ctx, drillRecord(2, 500, 1000))
	if err == nil || !strings.Contains(err.Error(), "gave up waiting for another drill") {
		t.Fatalf("got %v, want a wait that ends with the context", err)
	}
	if after, _ := os.ReadFile(path); string(after) != content {
		t.Error("appended without the lock")
	}
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := openFile(t, path).Append(t.Context(), drillRecord(2, 500, 1000)); err != nil {
		t.Fatalf("append once the lock is free: %v", err)
	}
}
