package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// instanceEnv is set in every container this target starts, to a value unique to that start:
// it is how the target finds the container's processes in /proc (APP_VERSION alone is not
// unique: a restart, or another drill of the same commit, runs the same version).
const instanceEnv = "DEPLOYDRILL_INSTANCE"

// ErrEngineNotLocal is why Inject fails when the app's container cannot be found on this
// machine: the engine runs elsewhere, so its containers are not processes here.
var ErrEngineNotLocal = errors.New("this fault needs the Dagger engine running on this Linux machine, " +
	"its containers' processes visible in /proc and their cgroups under a cgroup v2 mount (as hack/engine.sh runs it, as root); " +
	"an engine in a VM (Docker Desktop, a remote runner) cannot be faulted from here")

// container is one running app container as the host sees it.
type container struct {
	instance string
	initPID  int      // the container's first process (dagger's /.init); gunicorn is below it
	cgroup   string   // its cgroup v2 directory on this machine, e.g. /sys/fs/cgroup/unified/buildkit/ID
	pids     []int    // every process of the container when it was found
	netns    *os.File // its network namespace, held open while a fault needs it
	closed   sync.Once
}

// close lets go of the network namespace (freed with its rules if the container is gone).
func (c *container) close() error {
	var err error
	c.closed.Do(func() { err = c.netns.Close() })
	return err
}

// findContainer polls /proc (bounded by wait) for the processes whose environment carries
// instance, then takes their cgroup and network namespace from the container's first process.
func findContainer(ctx context.Context, instance string, wait time.Duration) (*container, error) {
	if runtime.GOOS != "linux" {
		return nil, ErrEngineNotLocal
	}
	var pids []int
	err := poll(ctx, wait, "the app's processes in /proc", func() (bool, error) {
		pids = processesWithEnv(instanceEnv + "=" + instance)
		return len(pids) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find the app's processes (%s=%s): %w; %w", instanceEnv, instance, err, ErrEngineNotLocal)
	}
	c := &container{instance: instance, pids: pids, initPID: pids[0]}
	for _, pid := range pids { // the one whose parent is not the app's
		if ppid, err := parentPID(pid); err == nil && !slices.Contains(pids, ppid) {
			c.initPID = pid
			break
		}
	}
	if c.cgroup, err = cgroupDir(c.initPID); err != nil {
		return nil, fmt.Errorf("find the app's cgroup: %w; %w", err, ErrEngineNotLocal)
	}
	// Never freeze or kill more than the app: the cgroup must hold the container alone.
	members, err := cgroupProcs(c.cgroup)
	if err != nil {
		return nil, fmt.Errorf("find the app's cgroup: %w", err)
	}
	for _, pid := range members {
		if !slices.Contains(processesWithEnvIn([]int{pid}, instanceEnv+"="+instance), pid) {
			return nil, fmt.Errorf("cgroup %s holds process %d, which is not the app's: refusing to fault it", c.cgroup, pid)
		}
	}
	if c.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", c.initPID)); err != nil {
		return nil, fmt.Errorf("open the app's network namespace: %w", err)
	}
	return c, nil
}

// processesWithEnv lists the live processes whose initial environment holds entry (NAME=value).
func processesWithEnv(entry string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
			pids = append(pids, pid)
		}
	}
	return processesWithEnvIn(pids, entry)
}

func processesWithEnvIn(pids []int, entry string) []int {
	var out []int
	for _, pid := range pids {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(e []byte) bool { return string(e) == entry }) {
			continue
		}
		if state, err := processState(pid); err != nil || state == 'Z' {
			continue // gone, or exited and not yet reaped
		}
		out = append(out, pid)
	}
	slices.Sort(out)
	return out
}

// stat returns the fields of /proc/PID/stat after the command name.
func stat(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(data[i+1:])), nil
}

func processState(pid int) (byte, error) {
	f, err := stat(pid)
	if err != nil || len(f) < 1 {
		return 0, errors.Join(err, fmt.Errorf("/proc/%d/stat: no state", pid))
	}
	return f[0][0], nil
}

func parentPID(pid int) (int, error) {
	f, err := stat(pid)
	if err != nil || len(f) < 2 {
		return 0, errors.Join(err, fmt.Errorf("/proc/%d/stat: no parent", pid))
	}
	return strconv.Atoi(f[1])
}

// cgroupDir is pid's cgroup v2 directory on this machine: the "0::" line of /proc/PID/cgroup
// under the cgroup2 mount (the unified hierarchy, also on hybrid v1+v2 hosts).
func cgroupDir(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	var rel string
	for line := range strings.SplitSeq(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel = p
		}
	}
	if rel == "" || rel == "/" {
		return "", fmt.Errorf("process %d has no cgroup v2 of its own (/proc/%d/cgroup: %q)", pid, pid, strings.TrimSpace(string(data)))
	}
	mount, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(mount, rel)
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return "", fmt.Errorf("cgroup of process %d: %w", pid, err)
	}
	return dir, nil
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup on a v2 host,
// /sys/fs/cgroup/unified on a hybrid one).
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fields[sep+1] == "cgroup2" && fields[3] == "/" {
			return fields[4], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted (this fault needs cgroup v2, or the hybrid unified mount)")
}

func cgroupProcs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: %q", dir, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// cgroupEvent reads one key of cgroup.events ("populated", "frozen"); gone reports a removed
// cgroup (the container has ended).
func cgroupEvent(dir, key string) (value string, gone bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if errors.Is(err, os.ErrNotExist) {
		return "", true, nil
	}
	if err != nil {
		return "", false, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return v, false, nil
		}
	}
	return "", false, fmt.Errorf("%s/cgroup.events has no %q", dir, key)
}

// kill SIGKILLs every process of the container at once (cgroup.kill, Linux 5.14 and later)
// and waits until none is left. A gone cgroup has nothing left to kill.
func (c *container) kill(ctx context.Context) error {
	err := writeCgroupFile(c.cgroup, "cgroup.kill", "1")
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat(c.cgroup); statErr == nil {
			return fmt.Errorf("kill cgroup %s: no cgroup.kill (it needs Linux 5.14 or later): %w", c.cgroup, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("kill cgroup %s: %w", c.cgroup, err)
	}
	return poll(ctx, 5*time.Second, "the app's processes to exit after SIGKILL", func() (bool, error) {
		populated, gone, err := cgroupEvent(c.cgroup, "populated")
		return gone || populated == "0", err
	})
}

// freeze(true) stops every process of the container (cgroup.freeze) and waits until the
// kernel says the cgroup is frozen; freeze(false) thaws it. A gone cgroup needs no thawing.
func (c *container) freeze(ctx context.Context, frozen bool) error {
	value, what := "1", "frozen"
	if !frozen {
		value, what = "0", "thawed"
	}
	err := writeCgroupFile(c.cgroup, "cgroup.freeze", value)
	if errors.Is(err, os.ErrNotExist) && !frozen {
		return nil
	}
	if err != nil {
		return fmt.Errorf("freeze cgroup %s (cgroup.freeze=%s): %w", c.cgroup, value, err)
	}
	return poll(ctx, 5*time.Second, "cgroup "+c.cgroup+" to be "+what, func() (bool, error) {
		v, gone, err := cgroupEvent(c.cgroup, "frozen")
		if gone {
			if frozen {
				return false, errors.New("the app's container ended")
			}
			return true, nil
		}
		return v == value, err
	})
}

// writeCgroupFile writes an existing control file (cgroupfs does not create files).
func writeCgroupFile(dir, name, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	return errors.Join(err, f.Close())
}

// poll checks done every 20-200 ms until it says true, fails, ctx ends or max passes.
func poll(ctx context.Context, max time.Duration, what string, done func() (bool, error)) error {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	wait := 20 * time.Millisecond
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-deadline.C:
			return fmt.Errorf("timed out after %s waiting for %s", max, what)
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
