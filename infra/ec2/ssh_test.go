package ec2_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/infra/ec2"
)

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPinnedHostKey(t *testing.T) {
	a, _ := ssh.NewSignerFromKey(mustKey(t))
	b, _ := ssh.NewSignerFromKey(mustKey(t))
	check := ec2.PinnedHostKey(a.PublicKey())
	if err := check("h:22", nil, a.PublicKey()); err != nil {
		t.Errorf("the pinned key was refused: %v", err)
	}
	if err := check("h:22", nil, b.PublicKey()); !errors.Is(err, ec2.ErrHostKeyMismatch) {
		t.Errorf("another key: got %v, want ErrHostKeyMismatch", err)
	}
}

func TestDialSSHHonoursTheContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and stay silent: a handshake that never completes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	cfg := &ssh.ClientConfig{User: "u", HostKeyCallback: ec2.PinnedHostKey(mustSigner(t).PublicKey())}
	_, err = ec2.DialSSH(ctx, ln.Addr().String(), cfg, ec2.Poll{Initial: time.Millisecond, Max: time.Millisecond, Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
}

func mustSigner(t *testing.T) ssh.Signer {
	s, err := ssh.NewSignerFromKey(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDetectPublicIP(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    string
		wantErr bool
	}{
		{"a bare address with a newline", http.StatusOK, "198.51.100.4\n", "198.51.100.4", false},
		{"an ipv6 address", http.StatusOK, "2001:db8::1", "2001:db8::1", false},
		{"a server error", http.StatusBadGateway, "", "", true},
		{"an answer that is not an address", http.StatusOK, "<html>", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			got, err := ec2.DetectPublicIP(srv.Client(), srv.URL)(t.Context())
			if (err != nil) != tt.wantErr || (err == nil && got.String() != tt.want) {
				t.Fatalf("got %v, %v; want %s (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
