package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// Slots bounds the heavy work that runs on this machine at once, across every test process of
// the suite (go test runs packages side by side): a whole drill, a fault case on a real app, an
// image build. On 2 cores more than a few side by side make the machine's speed the tests'
// result (a probe times out, a killed process takes seconds to go). DRILL_TEST_SLOTS sets the
// bound (default 1: one heavy test at a time, as the suite ran before; with 2 to 4, probes
// through the engine's tunnels were seen to stall for over a second while other drills' builds
// and starts kept the engine busy, which is not yet understood; DRILL_TEST_SLOTS=3 is the fast
// way on a developer's machine).
func Slots() int {
	if n, err := strconv.Atoi(os.Getenv("DRILL_TEST_SLOTS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// Slot waits until weight of the machine's slots are free, takes them and returns their
// release, which t's cleanup also calls. A slot is an flock(2) lock on a file of its own, so a
// process that dies gives its slots back. It takes all of them or none, so two callers never
// hold some each and wait for the rest.
func Slot(t testing.TB, weight int) (release func()) {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "deploydrill-test-slots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("test slots: %v", err)
	}
	asked := time.Now()
	n := Slots()
	weight = min(max(weight, 1), n)
	// First in line in this process (FIFO, so no caller starves behind later ones), then in
	// the machine's line (the queue file's lock: the one holding it takes the next free slots;
	// without it, a process whose callers poll faster kept every slot), then the slots.
	if err := inProcess.Acquire(t.Context(), int64(weight)); err != nil {
		t.Fatalf("no %d of the machine's %d test slots before the test ended", weight, n)
	}
	queue, err := os.OpenFile(filepath.Join(dir, "queue"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		inProcess.Release(int64(weight))
		t.Fatalf("test slots: %v", err)
	}
	defer queue.Close() // leaves the line
	if err := syscall.Flock(int(queue.Fd()), syscall.LOCK_EX); err != nil {
		inProcess.Release(int64(weight))
		t.Fatalf("test slots: wait in line: %v", err)
	}
	wait := 10 * time.Millisecond
	for {
		held := tryTake(dir, n, weight)
		if len(held) == weight {
			var once sync.Once
			got := time.Now()
			release = func() {
				once.Do(func() {
					// In go test -json's events (hack/gotest -events): where a test's time went.
					t.Logf("test slots: waited %s for %d, held them %s", got.Sub(asked).Round(time.Millisecond), weight, time.Since(got).Round(time.Millisecond))
					for _, f := range held {
						f.Close() // closing the file drops its lock
					}
					inProcess.Release(int64(weight))
				})
			}
			t.Cleanup(release)
			return release
		}
		for _, f := range held {
			f.Close()
		}
		select {
		case <-time.After(wait): // a poll: flock has no wait for any one of several files
		case <-t.Context().Done():
			inProcess.Release(int64(weight))
			t.Fatalf("no %d of the machine's %d test slots before the test ended", weight, n)
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

var inProcess = semaphore.NewWeighted(int64(Slots()))

// tryTake locks up to weight free slot files without waiting.
func tryTake(dir string, n, weight int) []*os.File {
	var held []*os.File
	for i := 0; i < n && len(held) < weight; i++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("slot-%d", i)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close()
			continue
		}
		held = append(held, f)
	}
	return held
}
