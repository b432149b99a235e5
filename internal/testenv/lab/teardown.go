package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// teardown removes everything a lab called n owns, in order, each step idempotent, errors
// collected: processes, cgroup folders, the host veth, the namespace, the state dir. It is also how
// Start removes a lab a killed run left behind.
func teardown(ctx context.Context, n names) error {
	if err := killAll(ctx, n); err != nil {
		// Removing the rest under live processes would fail or pull files from under them.
		return err
	}
	var errs []error
	errs = append(errs, removeCgroupsWhenEmpty(ctx, n.cgroup))
	// The host end first: deleting a namespace is asynchronous, and its veth lingers a moment
	// after `ip netns del` returns (pitfall 6).
	if _, err := run(ctx, "ip", "link", "del", n.vethHost); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	if _, err := os.Stat("/run/netns/" + n.netns); err == nil {
		if _, err := run(ctx, "ip", "netns", "del", n.netns); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, removeStateDir(n.stateDir))
	return errors.Join(errs...)
}

// killAll SIGKILLs every process in the lab's network namespace (sshd, dockerd, containerd, shims,
// commands left by SSH sessions: pitfall 4) and in its docker cgroups (containers, which live in
// namespaces of their own: pitfall 3), until none is left. A zombie counts as gone: PID 1 here
// reaps orphans only every ~2 s (pitfall 5).
func killAll(ctx context.Context, n names) error {
	const limit = 30 * time.Second
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pids, err := labPIDs(n)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s killing lab processes %v", limit, pids)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("killing lab processes %v: %w", pids, ctx.Err())
		case <-tick.C:
		}
	}
}

// labPIDs lists live (non-zombie) processes in the lab's netns or under its cgroup-parent.
func labPIDs(n names) ([]int, error) {
	var pids []int
	if st, err := os.Stat("/run/netns/" + n.netns); err == nil {
		ino := st.Sys().(*syscall.Stat_t).Ino
		want := fmt.Sprintf("net:[%d]", ino)
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			if link, err := os.Readlink(d + "/ns/net"); err == nil && link == want {
				if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
					pids = append(pids, pid)
				}
			}
		}
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		_ = filepath.WalkDir(filepath.Join(m, n.cgroup), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)
	return slices.DeleteFunc(pids, func(pid int) bool { return !alive(pid) || pid == os.Getpid() }), nil
}

func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

// cgroupMounts lists the mount points of every cgroup hierarchy (v1 and v2).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// mountinfo: id parent maj:min root mountpoint options ... - fstype source super-options
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep > 4 && sep+1 < len(fields) && (fields[sep+1] == "cgroup" || fields[sep+1] == "cgroup2") {
			mounts = append(mounts, fields[4])
		}
	}
	return mounts, sc.Err()
}

// removeCgroupsWhenEmpty retries removeCgroups while a folder is busy: a killed container can
// linger as a zombie in cgroup.procs until PID 1 reaps it, which here happens only every ~2 s
// (pitfall 5), and rmdir answers EBUSY until then.
func removeCgroupsWhenEmpty(ctx context.Context, parent string) error {
	const limit = 15 * time.Second
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := removeCgroups(parent)
		if err == nil || !errors.Is(err, unix.EBUSY) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for reaped processes to leave the cgroups: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("removing cgroups: %w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// removeCgroups removes the folders docker made under the cgroup-parent in every hierarchy,
// deepest first (rmdir is how cgroups are deleted; they hold no real files).
func removeCgroups(parent string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(m, parent), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for _, d := range slices.Backward(dirs) {
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeStateDir deletes the lab's files. Mounts made inside the lab's private mount namespace
// vanish with its last process; anything still mounted under the dir here is detached first, so
// RemoveAll never walks into a mounted filesystem.
func removeStateDir(dir string) error {
	if !strings.HasPrefix(filepath.Base(dir), "deploydrill-lab-") {
		return fmt.Errorf("refusing to remove %s: not a lab state dir", dir)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounted []string
	for l := range strings.Lines(string(data)) {
		if f := strings.Fields(l); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounted = append(mounted, f[4])
		}
	}
	slices.Sort(mounted)
	for _, m := range slices.Backward(mounted) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove state dir: %w", err)
	}
	return nil
}
