package remote

import (
	_ "embed"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The commands that inject a fault into the app on a host and take it away again. What needs
// root (the firewall, signalling the container's processes) runs through Sudo; what docker can
// do goes through the docker group. Everything a fault leaves on the host is marked with
// FaultMarker (iptables comments, the command lines of the processes it starts) and, where it
// is a process, tracked by a pid file, so clearing it touches nothing else.

// FaultMarker starts every iptables comment and every process marker a fault leaves on a host.
const FaultMarker = "deploydrill-fault"

// Markers of the processes faults start: each is in its process's command line.
const (
	CrashLoopMarker = FaultMarker + "-crashloop"
	DelayMarker     = FaultMarker + "-slow"
)

var (
	//go:embed scripts/crashloop.sh
	crashLoopScript string
	//go:embed scripts/delay.py
	delayScript string
	//go:embed scripts/start.sh
	startScript string
	//go:embed scripts/stop.sh
	stopScript string
)

// Sudo runs each step of c as root. -n makes it fail at once ("a password is required") where
// sudo would prompt: a host whose remote user lacks passwordless sudo fails clearly, never hangs.
func Sudo(c Command) Command {
	prefix := []string{"sudo", "-n", "--"}
	out := Command{}
	shown := c.shownSteps()
	for i, s := range c.steps {
		out.steps = append(out.steps, append(slices.Clone(prefix), s...))
		out.shown = append(out.shown, Join(prefix)+" "+shown[i])
	}
	return out
}

// SudoCheck succeeds only where the remote user may run commands as root without a password.
func SudoCheck() Command {
	return Sudo(NewCommand("true"))
}

// Kill sends signal to the container's main process through docker (KILL: a crash, no graceful
// shutdown). Docker counts it as a manual stop: no restart policy brings the container back.
func Kill(name, signal string) Command {
	return NewCommand("docker", "kill", "--signal", signal, name)
}

// Pause freezes every process of the container (the cgroup freezer): its port stays open and
// nothing answers. Docker returns once the cgroup is frozen.
func Pause(name string) Command {
	return NewCommand("docker", "pause", name)
}

// Unpause thaws what Pause froze.
func Unpause(name string) Command {
	return NewCommand("docker", "unpause", name)
}

// UpdateRestart sets the container's restart policy (no, always, on-failure, unless-stopped).
func UpdateRestart(name, policy string) Command {
	return NewCommand("docker", "update", "--restart", policy, name)
}

// Rule is one iptables rule a fault adds on a host, marked by its comment (which starts with
// FaultMarker and names the run): listing finds it by that comment, and deleting it takes the
// same spec, so no other rule is ever touched.
type Rule struct {
	Table, Chain string
	Match        []string // e.g. -p tcp --dport 80
	Target       []string // e.g. -j DROP
	Comment      string
}

// PartitionRule drops every TCP packet arriving for hostPort, before docker's DNAT (raw
// PREROUTING): new connections and established ones time out, as if a network partition cut the
// host off from its clients. SSH (another port) is untouched, so the fault can be cleared.
func PartitionRule(hostPort int, runID string) Rule {
	return Rule{
		Table: "raw", Chain: "PREROUTING",
		Match:   []string{"-p", "tcp", "--dport", strconv.Itoa(hostPort)},
		Target:  []string{"-j", "DROP"},
		Comment: FaultMarker + " partition run " + runID,
	}
}

// DelayRule sends the app's replies (the reply direction of connections docker's DNAT took from
// hostPort to the container: not the replies to the container's own outbound connections) to
// netfilter queue queue, where the delayer holds them. --queue-bypass lets packets through while no delayer is bound to the queue, so a
// delayer that dies ends the delay, never the app's traffic.
func DelayRule(hostPort, queue int, runID string) Rule {
	return Rule{
		Table: "mangle", Chain: "POSTROUTING",
		Match:   []string{"-p", "tcp", "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdstport", strconv.Itoa(hostPort), "--ctdir", "REPLY"},
		Target:  []string{"-j", "NFQUEUE", "--queue-num", strconv.Itoa(queue), "--queue-bypass"},
		Comment: FaultMarker + " slow run " + runID,
	}
}

func (r Rule) argv(op string) []string {
	argv := []string{"iptables", "-w", "5", "-t", r.Table, op, r.Chain}
	argv = append(argv, r.Match...)
	argv = append(argv, "-m", "comment", "--comment", r.Comment)
	return append(argv, r.Target...)
}

// InsertRule puts r first in its chain. Run it through Sudo.
func InsertRule(r Rule) Command { return NewCommand(r.argv("-I")...) }

// DeleteRule deletes one rule matching r exactly (exit 1 when there is none). Run it through Sudo.
func DeleteRule(r Rule) Command { return NewCommand(r.argv("-D")...) }

// ListRules prints the rules of the chain as iptables -S does; CountRules reads it. Run it
// through Sudo.
func ListRules(table, chain string) Command {
	return NewCommand("iptables", "-w", "5", "-t", table, "-S", chain)
}

// CountRules counts the rules in ListRules output whose comment is exactly comment.
func CountRules(out []byte, comment string) int {
	n := 0
	for line := range strings.Lines(string(out)) {
		if ruleComment(line) == comment {
			n++
		}
	}
	return n
}

// ruleComment is the --comment value of one iptables -S line: iptables prints it in double
// quotes (escaping " and \) when it has spaces, bare otherwise.
func ruleComment(line string) string {
	_, rest, ok := strings.Cut(line, " --comment ")
	if !ok {
		return ""
	}
	if !strings.HasPrefix(rest, `"`) {
		word, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		return word
	}
	var b strings.Builder
	for i := 1; i < len(rest); i++ {
		switch c := rest[i]; c {
		case '\\':
			if i+1 < len(rest) {
				i++
				b.WriteByte(rest[i])
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return "" // unterminated: not a comment iptables printed
}

// Delayer is the process that holds the app's replies (see DelayRule) for Delay each.
type Delayer struct {
	Queue    int           // the netfilter queue it binds
	Delay    time.Duration // what it adds to every packet that carries data
	Lifetime time.Duration // it ends by itself after this long, delay or not
	PIDFile  string        // where it writes its pid; relative to the remote user's home
}

// StartDelayer binds the queue and returns once the delayer runs detached, its pid in PIDFile
// (scripts/delay.py, plain Python 3 speaking netlink: nothing to install, no netem needed).
// Run it through Sudo; stop it with StopProcess(d.PIDFile, DelayMarker), also through Sudo.
func StartDelayer(d Delayer) Command {
	args := []string{DelayMarker, strconv.Itoa(d.Queue), seconds(d.Delay), seconds(d.Lifetime), d.PIDFile}
	return script(append([]string{"python3", "-c", delayScript}, args...), append([]string{"python3", "-c", "<delay.py>"}, args...))
}

// CrashLoop kills the container's main process Uptime after each start, while its restart
// policy is "always", so the app flaps as a crashing one does under a restart policy.
type CrashLoop struct {
	Container string
	Uptime    time.Duration
	Lifetime  time.Duration // it ends by itself after this long
	PIDFile   string        // relative to the remote user's home
}

// StartCrashLoop starts scripts/crashloop.sh detached (scripts/start.sh) as the remote user and
// returns once it runs, its pid in PIDFile. The loop kills through sudo -n: check SudoCheck
// first. Stop it with StopProcess(c.PIDFile, CrashLoopMarker).
func StartCrashLoop(c CrashLoop) Command {
	life := strconv.Itoa(int(math.Ceil(max(c.Lifetime, time.Second).Seconds())))
	args := []string{CrashLoopMarker, c.PIDFile, c.Container, seconds(c.Uptime), life, c.PIDFile}
	return script(append([]string{"sh", "-c", startScript, FaultMarker + "-start", crashLoopScript}, args...),
		append([]string{"sh", "-c", "<start.sh>", FaultMarker + "-start", "<crashloop.sh>"}, args...))
}

// StopProcess stops the process pidFile names (and its process group) if its command line holds
// marker, waits until it is gone and removes pidFile; with nothing to stop it succeeds.
func StopProcess(pidFile, marker string) Command {
	return script([]string{"sh", "-c", stopScript, FaultMarker + "-stop", pidFile, marker},
		[]string{"sh", "-c", "<stop.sh>", FaultMarker + "-stop", pidFile, marker})
}

// seconds formats d for sleep(1) and Python: seconds with millisecond precision.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(max(d, 0).Seconds(), 'f', 3, 64)
}
