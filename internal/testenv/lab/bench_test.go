package lab

import (
	"context"
	"testing"

	"github.com/deploydrill/deploydrill/infra/remote"
)

// BenchmarkStartClose is a warm lab's whole life: namespace, veth, dockerd and sshd up, then
// everything removed.
func BenchmarkStartClose(b *testing.B) {
	Require(b)
	for b.Loop() {
		inst, err := Start(b.Context(), Config{Name: "bench", Index: 5})
		if err != nil {
			b.Fatal(err)
		}
		if err := inst.Close(context.WithoutCancel(b.Context())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRun is one SSH command round trip to the lab over the Runner's reused connection: the
// floor under every remote step of a deploy or rollback.
func BenchmarkRun(b *testing.B) {
	Require(b)
	client, authorized := newClientKey(b)
	inst, err := Start(b.Context(), Config{Name: "bench-run", Index: 6, AuthorizedKeys: authorized})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close(context.WithoutCancel(b.Context()))
	r, err := remote.Dial(b.Context(), remote.Config{Addr: inst.SSHAddr(), User: inst.User(), Signer: client, HostKey: inst.HostKey()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.Run("true", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Run(b.Context(), remote.NewCommand("true")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("docker version", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Run(b.Context(), remote.ServerVersion()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
