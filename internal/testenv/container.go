package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// AppContainer is one running container of the app as this machine sees it, taken from /proc
// and the cgroup tree alone (ground truth for fault tests, independent of the target's code).
type AppContainer struct {
	PIDs    []int  // live processes of the version in this container
	InitPID int    // the one whose parent is outside the container (dagger's /.init)
	PIDNS   string // its PID namespace, e.g. pid:[4026533459] (the kernel reuses these numbers)
	// Cgroup is its cgroup v2 directory, e.g. /sys/fs/cgroup/unified/buildkit/ID ("" if none):
	// the engine names one per container, so it tells two starts apart.
	Cgroup string
}

// NetNS is the container's network namespace as a path nsenter takes.
func (c AppContainer) NetNS() string { return fmt.Sprintf("/proc/%d/ns/net", c.InitPID) }

// AppContainers groups AppProcesses(version) by PID namespace: one entry per running container.
func AppContainers(version string) []AppContainer {
	byNS := map[string]*AppContainer{}
	var order []string
	for _, p := range AppProcesses(version) {
		pid, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		if err != nil {
			continue // exited meanwhile
		}
		c := byNS[ns]
		if c == nil {
			c = &AppContainer{PIDNS: ns}
			byNS[ns] = c
			order = append(order, ns)
		}
		c.PIDs = append(c.PIDs, pid)
	}
	var out []AppContainer
	for _, ns := range order {
		c := byNS[ns]
		for _, pid := range c.PIDs {
			if !slices.Contains(c.PIDs, parentOf(pid)) {
				c.InitPID = pid
				break
			}
		}
		c.Cgroup = cgroupV2Dir(c.PIDs[0])
		out = append(out, *c)
	}
	return out
}

func parentOf(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state, ppid, ...
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

func cgroupV2Dir(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	var rel string
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel = p
		}
	}
	mounts, err := os.Open("/proc/self/mountinfo")
	if err != nil || rel == "" {
		return ""
	}
	defer mounts.Close()
	sc := bufio.NewScanner(mounts)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if i := slices.Index(f, "-"); i > 4 && i+1 < len(f) && f[i+1] == "cgroup2" {
			return filepath.Join(f[4], rel)
		}
	}
	return ""
}

// CgroupState reads a cgroup v2 directory's cgroup.events: whether it still exists, is
// populated, and is frozen.
func CgroupState(dir string) (exists, populated, frozen bool) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, false, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		switch line {
		case "populated 1":
			populated = true
		case "frozen 1":
			frozen = true
		}
	}
	return true, populated, frozen
}

// InNetns runs argv in the network namespace of process pid (nsenter) and returns its output.
func InNetns(pid int, argv ...string) (string, error) {
	args := append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", pid), "--"}, argv...)
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("nsenter %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
