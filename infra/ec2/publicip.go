package ec2

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
)

// CheckIPURL answers with the caller's public IP address as plain text.
const CheckIPURL = "https://checkip.amazonaws.com"

// IPDetector finds the runner's public IP, which the security group lets in on port 22.
type IPDetector func(ctx context.Context) (netip.Addr, error)

// DetectPublicIP asks url (which answers with a bare address) using client.
func DetectPublicIP(client *http.Client, url string) IPDetector {
	return func(ctx context.Context) (netip.Addr, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("detect public ip: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("detect public ip via %s: %w (pass --ssh-cidr to skip detection)", url, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 128))
		if err != nil {
			return netip.Addr{}, fmt.Errorf("detect public ip via %s: %w", url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return netip.Addr{}, fmt.Errorf("detect public ip via %s: %s", url, resp.Status)
		}
		addr, err := netip.ParseAddr(strings.TrimSpace(string(body)))
		if err != nil {
			return netip.Addr{}, fmt.Errorf("detect public ip via %s: answer %q is not an address", url, strings.TrimSpace(string(body)))
		}
		return addr.Unmap(), nil
	}
}

// hostPrefix turns an address into the single-host CIDR a security group rule takes.
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
