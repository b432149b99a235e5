package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The commands the faults run are data: pure argv builders, golden-tested, executed by run.

// netnsFD is the descriptor the app's network namespace is handed to nsenter on (ExtraFiles[0]):
// the target holds the namespace open, so a recycled PID can never point a rule elsewhere.
const netnsFD = 3

// ruleComment marks deploydrill's rules (with ":KIND"), so `iptables -S` shows whose they are.
const ruleComment = "deploydrill"

// inNetns runs argv inside the network namespace open on descriptor netnsFD.
func inNetns(argv ...string) []string {
	return append([]string{"nsenter", "--net=/proc/self/fd/" + strconv.Itoa(netnsFD), "--"}, argv...)
}

// ruleOp is what an iptables command does with a rule: -I (insert first) or -D (delete).
type ruleOp string

const (
	ruleInsert ruleOp = "-I"
	ruleDelete ruleOp = "-D"
)

// iptables builds one rule command; -I inserts at the top of the chain.
func iptables(op ruleOp, table, chain string, spec ...string) []string {
	argv := []string{"iptables", "-w", "5", "-t", table, string(op), chain}
	if op == ruleInsert {
		argv = append(argv, "1")
	}
	return append(argv, spec...)
}

// listRules lists a chain's rules as iptables commands (-S).
func listRules(table, chain string) []string {
	return []string{"iptables", "-w", "5", "-t", table, "-S", chain}
}

// dropPort is the partition rule: every TCP packet to the app's port is dropped, so new
// connections get no SYN-ACK and established ones stall: probes time out.
func dropPort(op ruleOp, port int) []string {
	return iptables(op, "filter", "INPUT",
		"-p", "tcp", "--dport", strconv.Itoa(port),
		"-m", "comment", "--comment", ruleComment+":partition",
		"-j", "DROP")
}

// redirectPort is slow's rule: new TCP connections to the app's port go to the delaying proxy
// listening on proxyPort in the same namespace (the proxy reaches the app on loopback, which
// PREROUTING does not see).
func redirectPort(op ruleOp, port, proxyPort int) []string {
	return iptables(op, "nat", "PREROUTING",
		"-p", "tcp", "--dport", strconv.Itoa(port),
		"-m", "comment", "--comment", ruleComment+":slow",
		"-j", "REDIRECT", "--to-ports", strconv.Itoa(proxyPort))
}

// runInNetns executes argv with ns as descriptor netnsFD and returns its combined output.
func runInNetns(ctx context.Context, ns *os.File, argv []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{ns}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}
