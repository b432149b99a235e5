package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Ground truth for tests, read from the host side, never through the SSH session a target uses:
// the kernel's firewall and queues in the instance's namespace, the processes in it, and each
// container as its daemon and its cgroups see it.

// Rules are the instance's iptables rules of table, one `iptables -S` line each.
func (inst *Instance) Rules(ctx context.Context, table string) ([]string, error) {
	out, err := run(ctx, "nsenter", "--net=/run/netns/"+inst.names.netns, "--", "iptables", "-w", "5", "-t", table, "-S")
	if err != nil {
		return nil, err
	}
	return nonEmptyLines(out), nil
}

// NFQueues are the netfilter queues some process in the instance has bound.
func (inst *Instance) NFQueues(ctx context.Context) ([]int, error) {
	out, err := run(ctx, "nsenter", "--net=/run/netns/"+inst.names.netns, "--", "cat", "/proc/net/netfilter/nfnetlink_queue")
	if err != nil {
		return nil, err
	}
	var queues []int
	for _, line := range nonEmptyLines(out) {
		// queue_number peer_portid queue_total copy_mode copy_range dropped user_dropped id_sequence 1
		if q, err := strconv.Atoi(strings.Fields(line)[0]); err == nil {
			queues = append(queues, q)
		}
	}
	return queues, nil
}

// Process is one live process of the lab.
type Process struct {
	PID     int
	UID     int
	Cmdline string // arguments joined by spaces
}

func (p Process) String() string {
	cmd := p.Cmdline
	if len(cmd) > 120 {
		cmd = cmd[:120] + "..."
	}
	return fmt.Sprintf("pid %d (uid %d): %s", p.PID, p.UID, cmd)
}

// Processes are the live processes in the instance's namespace or its containers' cgroups whose
// command line contains substr (zombies count as gone).
func (inst *Instance) Processes(substr string) ([]Process, error) {
	pids, err := labPIDs(inst.names)
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue // gone meanwhile
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		if !strings.Contains(cmdline, substr) {
			continue
		}
		p := Process{PID: pid, UID: -1, Cmdline: cmdline}
		if st, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			p.UID = int(st.Sys().(*syscall.Stat_t).Uid)
		}
		out = append(out, p)
	}
	return out, nil
}

// Container is one container as the lab's dockerd reports it and, for Frozen, as its cgroups are.
type Container struct {
	Name, ID      string
	Exists        bool
	Status        string // created, running, paused, restarting, exited, ...
	Running       bool
	Paused        bool
	Restarting    bool
	Pid           int // the main process on the host, 0 when not running
	ExitCode      int
	StartedAt     time.Time
	RestartPolicy string // no, always, ...
	RestartCount  int
	// Frozen is the cgroup freezer's own state of the container's cgroup (v1 freezer.state
	// FROZEN, v2 cgroup.events "frozen 1"), read from the cgroup filesystem, not from docker.
	Frozen bool
}

// Container inspects the container called name; a container that does not exist is reported
// with Exists false and no error.
func (inst *Instance) Container(ctx context.Context, name string) (Container, error) {
	out, err := inst.docker(ctx, "container", "inspect", "--format", "{{json .}}", name)
	if err != nil {
		if strings.Contains(err.Error(), "No such container") || strings.Contains(err.Error(), "No such object") {
			return Container{Name: name}, nil
		}
		return Container{}, err
	}
	var raw struct {
		ID    string `json:"Id"`
		State struct {
			Status                      string
			Running, Paused, Restarting bool
			Pid, ExitCode               int
			StartedAt                   time.Time
		}
		RestartCount int
		HostConfig   struct {
			RestartPolicy struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return Container{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	c := Container{Name: name, ID: raw.ID, Exists: true, Status: raw.State.Status, Running: raw.State.Running,
		Paused: raw.State.Paused, Restarting: raw.State.Restarting, Pid: raw.State.Pid, ExitCode: raw.State.ExitCode,
		StartedAt: raw.State.StartedAt, RestartPolicy: raw.HostConfig.RestartPolicy.Name, RestartCount: raw.RestartCount}
	if c.Frozen, err = inst.frozen(c.ID); err != nil {
		return Container{}, err
	}
	return c, nil
}

// Containers inspects every container the lab's dockerd has, running or not.
func (inst *Instance) Containers(ctx context.Context) ([]Container, error) {
	out, err := inst.docker(ctx, "ps", "--all", "--format", "{{.Names}}")
	if err != nil {
		return nil, err
	}
	var cs []Container
	for _, name := range nonEmptyLines(out) {
		c, err := inst.Container(ctx, name)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// frozen reads the freezer state of the container's cgroup under the lab's cgroup-parent, in
// every hierarchy that has one.
func (inst *Instance) frozen(id string) (bool, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		dir := filepath.Join(m, inst.names.cgroup, id)
		if data, err := os.ReadFile(filepath.Join(dir, "freezer.state")); err == nil {
			if strings.TrimSpace(string(data)) == "FROZEN" {
				return true, nil
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		if data, err := os.ReadFile(filepath.Join(dir, "cgroup.events")); err == nil {
			if slices.Contains(nonEmptyLines(string(data)), "frozen 1") {
				return true, nil
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return false, nil
}

// docker runs the docker CLI on the host against the lab's daemon, with the lab user's config
// dir, so the host's /root/.docker stays untouched.
func (inst *Instance) docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+inst.DockerHost(), "DOCKER_CONFIG="+inst.DockerConfigDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// State is what faults may leave on an instance, all of it read as ground truth.
type State struct {
	Rules      []string    // iptables rules (of every table) whose text contains the marker
	Queues     []int       // bound netfilter queues
	Processes  []Process   // processes whose command line contains the marker
	Containers []Container // every container
}

// Clean says what in s a cleared fault must not leave: a marked rule, a bound queue, a marked
// process, a paused or frozen container, a restart policy other than "no". Empty means clean.
func (s State) Clean() []string {
	var left []string
	for _, r := range s.Rules {
		left = append(left, "iptables rule "+r)
	}
	for _, q := range s.Queues {
		left = append(left, fmt.Sprintf("netfilter queue %d bound", q))
	}
	for _, p := range s.Processes {
		left = append(left, "process "+p.String())
	}
	for _, c := range s.Containers {
		if c.Paused || c.Frozen {
			left = append(left, fmt.Sprintf("container %s frozen (docker paused %v, cgroup frozen %v)", c.Name, c.Paused, c.Frozen))
		}
		if p := c.RestartPolicy; p != "" && p != "no" {
			left = append(left, fmt.Sprintf("container %s with restart policy %s", c.Name, p))
		}
	}
	return left
}

// State reads rules and processes containing marker, the bound queues and every container.
func (inst *Instance) State(ctx context.Context, marker string) (State, error) {
	var s State
	for _, table := range []string{"raw", "mangle", "nat", "filter"} {
		rules, err := inst.Rules(ctx, table)
		if err != nil {
			return State{}, err
		}
		for _, r := range rules {
			if strings.Contains(r, marker) {
				s.Rules = append(s.Rules, "-t "+table+" "+r)
			}
		}
	}
	var err error
	if s.Queues, err = inst.NFQueues(ctx); err != nil {
		return State{}, err
	}
	if s.Processes, err = inst.Processes(marker); err != nil {
		return State{}, err
	}
	if s.Containers, err = inst.Containers(ctx); err != nil {
		return State{}, err
	}
	return s, nil
}

func nonEmptyLines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
