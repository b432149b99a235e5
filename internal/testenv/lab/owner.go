package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A lab's state dir records its owner (pid and process start time, so a reused pid does not
// count), letting Start tell a lab that a killed run left behind, which it removes, from one
// another test process is using right now, which it must not touch.

func ownerFile(n names) string { return filepath.Join(n.stateDir, "owner") }

// claim records this process as the lab's owner, creating the state dir.
func claim(n names) error {
	if err := os.MkdirAll(n.stateDir, 0o755); err != nil {
		return err
	}
	start, err := processStart(os.Getpid())
	if err != nil {
		return err
	}
	return os.WriteFile(ownerFile(n), fmt.Appendf(nil, "%d %s\n", os.Getpid(), start), 0o644)
}

// liveOwner returns the pid of another live process that owns the lab, if any.
func liveOwner(n names) (int, bool) {
	data, err := os.ReadFile(ownerFile(n))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid == os.Getpid() || !alive(pid) {
		return 0, false
	}
	start, err := processStart(pid)
	return pid, err == nil && start == f[1]
}

// InUse returns the pid of another live process that owns the lab (an instance's or a
// balancer's) called name, if any: its owner is recorded before its namespace is made.
func InUse(name string) (int, bool) { return liveOwner(namesFor(name)) }

// processStart is field 22 of /proc/pid/stat: start time in clock ticks since boot.
func processStart(pid int) (string, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return f[19], nil // fields after "pid (comm)" start at field 3
}
