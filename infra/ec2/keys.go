package ec2

import (
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
)

// runKeys are generated in memory for one run and never written anywhere but AWS: the client
// key's public half goes to ImportKeyPair and user-data, the host key goes to user-data so the
// instance presents it and the client can pin it.
type runKeys struct {
	client  ssh.Signer
	host    ssh.Signer
	hostPEM string // OpenSSH private key block for cloud-init's ssh_keys
}

func newRunKeys(r io.Reader) (*runKeys, error) {
	_, clientKey, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("generate client key: %w", err)
	}
	client, err := ssh.NewSignerFromKey(clientKey)
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	return withHostKey(r, client)
}

// sharedKeys are a further host's keys in a fleet: the run's client key (one key pair for the
// run), and a host key of its own, so each host has its own identity to pin.
func sharedKeys(r io.Reader, run *runKeys) (*runKeys, error) { return withHostKey(r, run.client) }

// withHostKey makes a new host key to go with the client key.
func withHostKey(r io.Reader, client ssh.Signer) (*runKeys, error) {
	_, hostKey, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	host, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(hostKey, "deploydrill host key")
	if err != nil {
		return nil, fmt.Errorf("encode host key: %w", err)
	}
	return &runKeys{client: client, host: host, hostPEM: string(pem.EncodeToMemory(block))}, nil
}

// authorizedKey is a public key as one authorized_keys line without the newline.
func authorizedKey(k ssh.PublicKey, comment string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}
