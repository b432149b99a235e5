package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

func hostIP(index int) string     { return fmt.Sprintf("10.213.%d.1", index) }
func instanceIP(index int) string { return fmt.Sprintf("10.213.%d.2", index) }
func bridgeCIDR(index int) string { return fmt.Sprintf("10.213.%d.1/24", 64+index) }
func poolCIDR(index int) string   { return fmt.Sprintf("10.213.%d.0/23", 128+2*index) }

// checkIndexFree refuses an index whose /24 some host interface already uses: another lab
// running with the same index would otherwise lose its route.
func checkIndexFree(ctx context.Context, index int) error {
	out, err := run(ctx, "ip", "-o", "-4", "addr", "show", "to", fmt.Sprintf("10.213.%d.0/24", index))
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(out); s != "" {
		return fmt.Errorf("lab index %d is in use (another lab running?): %s", index, s)
	}
	return nil
}

// setupNetwork makes the namespace and the veth, the namespace end called eth0 like an instance's
// NIC. No default route inside: the namespace can reach the host end of the veth and nothing else.
func setupNetwork(ctx context.Context, n names, index int) error {
	steps := [][]string{
		{"ip", "netns", "add", n.netns},
		{"ip", "link", "add", n.vethHost, "type", "veth", "peer", "name", "eth0", "netns", n.netns},
		{"ip", "-n", n.netns, "link", "set", "lo", "up"},
		{"ip", "-n", n.netns, "addr", "add", instanceIP(index) + "/24", "dev", "eth0"},
		{"ip", "-n", n.netns, "link", "set", "eth0", "up"},
		{"ip", "addr", "add", hostIP(index) + "/24", "dev", n.vethHost},
		{"ip", "link", "set", n.vethHost, "up"},
	}
	for _, argv := range steps {
		if _, err := run(ctx, argv[0], argv[1:]...); err != nil {
			return err
		}
	}
	// IPv6 off on both ends: no router solicitations or link-local chatter in captures and logs.
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+n.vethHost+"/disable_ipv6", []byte("1"), 0); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("disable ipv6 on %s: %w", n.vethHost, err)
	}
	if _, err := run(ctx, "nsenter", "--net=/run/netns/"+n.netns, "--", "sh", "-c",
		`[ ! -d /proc/sys/net/ipv6 ] || { echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; }`); err != nil {
		return err
	}
	return nil
}

// run executes a host command and returns its stdout; the error carries its stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
