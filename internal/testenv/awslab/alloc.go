package awslab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/testenv/lab"
)

// Lab instances are named after their index ("awslab-12", netns ddlab-awslab-12), so the
// instance a killed run left at an index is found and removed when the index is next used, and
// every such leftover when a process first starts a lab (sweepStale).
const namePrefix = "awslab-"

func labName(index int) string { return namePrefix + strconv.Itoa(index) }

// indexes are the lab indexes this process holds; other processes are kept apart by the lab
// package itself (a live owner or an address in use makes Start refuse, and the next is tried).
var indexes = struct {
	sync.Mutex
	used map[int]bool
}{used: map[int]bool{}}

func reserveIndex(i int) bool {
	indexes.Lock()
	defer indexes.Unlock()
	if indexes.used[i] {
		return false
	}
	indexes.used[i] = true
	return true
}

func releaseIndex(i int) {
	indexes.Lock()
	defer indexes.Unlock()
	delete(indexes.used, i)
}

// startLab starts a lab at the first free index from Options.FirstIndex.
func (l *Lab) startLab(cfg lab.Config) (*lab.Instance, int, error) {
	ctx, cancel := context.WithTimeout(l.ctx, 2*time.Minute)
	defer cancel()
	for i := l.opts.FirstIndex; i <= lab.MaxIndex; i++ {
		if !reserveIndex(i) {
			continue
		}
		cfg.Name, cfg.Index = labName(i), i
		inst, err := lab.Start(ctx, cfg)
		if err == nil {
			return inst, i, nil
		}
		releaseIndex(i)
		if !strings.Contains(err.Error(), "in use") { // another process's lab: try the next index
			return nil, 0, err
		}
	}
	return nil, 0, fmt.Errorf("no free lab index from %d to %d", l.opts.FirstIndex, lab.MaxIndex)
}

// Load balancers' data planes are named after their own index ("awselb-12", netns
// ddlab-awselb-12), from the same range of numbers but in lab.MaxBalancerIndex's space.
const balancerPrefix = "awselb-"

func balancerLabName(index int) string { return balancerPrefix + strconv.Itoa(index) }

var balancerIndexes = struct {
	sync.Mutex
	used map[int]bool
}{used: map[int]bool{}}

func reserveBalancerIndex(i int) bool {
	balancerIndexes.Lock()
	defer balancerIndexes.Unlock()
	if balancerIndexes.used[i] {
		return false
	}
	balancerIndexes.used[i] = true
	return true
}

func releaseBalancerIndex(i int) {
	balancerIndexes.Lock()
	defer balancerIndexes.Unlock()
	delete(balancerIndexes.used, i)
}

// leftNamespace reports whether path, the namespace of a lab instance or data plane called
// name that closed cleanly (Close removed the namespace, then its index was released), is
// still there and nobody else's. The name comes from the index alone and the index space is the
// process's, so a newer lab of any Lab in this process may hold the name now: one whose index
// is reserved in used (checked under mu, so none is reserved meanwhile, and any released has
// had its namespace removed), or another process's (a live owner).
func leftNamespace(mu *sync.Mutex, used map[int]bool, index int, name, path string) bool {
	mu.Lock()
	defer mu.Unlock()
	if used[index] {
		return false
	}
	if _, err := os.Stat(path); err != nil {
		return false
	}
	_, other := lab.InUse(name)
	return !other
}

var sweepOnce sync.Once

// sweepStaleOnce removes, once per process, the lab instances killed runs left behind (their
// owner is dead); those of live processes are left alone. The lab package removes a stale lab
// only on a Start of the same name, so this starts and closes one at each leftover name.
func sweepStaleOnce(t testing.TB) {
	sweepOnce.Do(func() {
		paths, _ := filepath.Glob("/run/netns/ddlab-" + namePrefix + "*")
		for _, p := range paths {
			name := strings.TrimPrefix(filepath.Base(p), "ddlab-")
			i, err := strconv.Atoi(strings.TrimPrefix(name, namePrefix))
			if err != nil || i > lab.MaxIndex || !reserveIndex(i) {
				continue
			}
			sweepStale(t, name, i)
			releaseIndex(i)
		}
		paths, _ = filepath.Glob("/run/netns/ddlab-" + balancerPrefix + "*")
		for _, p := range paths {
			name := strings.TrimPrefix(filepath.Base(p), "ddlab-")
			i, err := strconv.Atoi(strings.TrimPrefix(name, balancerPrefix))
			if err != nil || i > lab.MaxBalancerIndex || !reserveBalancerIndex(i) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := lab.RemoveStale(ctx, name); err != nil {
				if !strings.Contains(err.Error(), "in use") {
					t.Logf("awslab: remove stale load balancer %s: %v", name, err)
				}
			} else {
				t.Logf("awslab: removed load balancer data plane %s left by a killed run", name)
			}
			cancel()
			releaseBalancerIndex(i)
		}
	})
}

func sweepStale(t testing.TB, name string, index int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := lab.Start(ctx, lab.Config{Name: name, Index: index})
	if err != nil {
		if !strings.Contains(err.Error(), "in use") {
			t.Logf("awslab: remove stale lab %s: %v", name, err)
		}
		return
	}
	if err := inst.Close(ctx); err != nil {
		t.Logf("awslab: remove stale lab %s: %v", name, err)
		return
	}
	if _, err := os.Stat("/run/netns/ddlab-" + name); err == nil {
		t.Logf("awslab: stale lab %s is still there after removal", name)
		return
	}
	t.Logf("awslab: removed lab %s left by a killed run", name)
}
