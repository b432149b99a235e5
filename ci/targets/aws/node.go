package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/remote"
)

// node is one host of the run: its ledger, its SSH session, and the fault on it. A single-host
// drill has one; a fleet has one per host, and every host action is a node's.
type node struct {
	cfg *Config
	log *slog.Logger

	mu     sync.Mutex
	host   *ec2.Host // the ledger: what LaunchHost created, even when it failed
	runner *remote.Runner
	fault  *drill.Fault // injected and not cleared yet (fault.go)
	// running is the image ref its last deploy started and no stop has ended since: a fleet's
	// rollout leaves a host that runs it already alone.
	running string
}

func (n *node) name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.host == nil {
		return "the host"
	}
	return n.host.String()
}

func (n *node) instanceID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.host == nil {
		return ""
	}
	return n.host.InstanceID
}

// connect waits once for SSH with the pinned key, then until Docker answers the remote user,
// and logs Docker into the registry (the password on stdin).
func (n *node) connect(ctx context.Context, auth ecr.Auth) error {
	n.mu.Lock()
	host := n.host
	n.mu.Unlock()
	start := time.Now()
	runner, err := remote.Dial(ctx, remote.Config{
		Addr: host.SSHAddr(), User: host.User, Signer: host.Signer(), HostKey: host.HostKey,
		RetryFor: n.cfg.SSHReady, Logger: n.log,
	})
	if err != nil {
		return fmt.Errorf("provision %s: %w", host, err)
	}
	n.log.Info("ssh ready", "host", host.String(), "after_running", time.Since(start))
	runner, err = n.awaitDocker(ctx, host, runner)
	if err != nil {
		return fmt.Errorf("provision %s: %w", host, err)
	}
	n.mu.Lock()
	n.runner = runner
	n.mu.Unlock()
	if _, err := runner.Run(ctx, remote.Login(auth.Host, auth.User), remote.WithSecretStdin(auth.Password.Reveal()), remote.WithTimeout(n.cfg.CommandTimeout)); err != nil {
		return fmt.Errorf("docker login on %s: %w", host, err)
	}
	return nil
}

// awaitDocker polls `docker version` until the daemon answers the remote user. A failed attempt
// ends its connection and the next logs in anew with one dial (no retry loop of its own): the
// user joins the docker group while cloud-init runs, and a login made before that never gets
// the group. A host key mismatch or a refused key ends the wait at once.
func (n *node) awaitDocker(ctx context.Context, host *ec2.Host, first *remote.Runner) (*remote.Runner, error) {
	r, connected := first, true
	err := n.cfg.DockerPoll.Run(ctx, "docker on "+host.String(), func(ctx context.Context) (bool, error) {
		if !connected {
			next, err := r.Reconnect(ctx)
			if err != nil {
				return !remote.Retryable(err), err
			}
			r, connected = next, true
		}
		if _, err := r.Run(ctx, remote.ServerVersion(), remote.WithTimeout(n.cfg.CommandTimeout)); err != nil {
			r.Close()
			connected = false
			return false, err
		}
		return true, nil
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	n.log.Info("docker ready", "host", host.String())
	return r, nil
}

func (n *node) remote() (*remote.Runner, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runner == nil {
		return nil, errors.New("the host is not up")
	}
	return n.runner, nil
}

// pull fetches img unless the host has it already; it reports whether it pulled.
func (n *node) pull(ctx context.Context, img drill.Image) (bool, error) {
	r, err := n.remote()
	if err != nil {
		return false, err
	}
	ref, err := remote.ParseImageRef(img.Ref)
	if err != nil {
		return false, err
	}
	if _, err := r.Run(ctx, remote.ImagePresent(ref), remote.WithTimeout(n.cfg.CommandTimeout)); err == nil {
		return false, nil
	}
	if _, err := r.Run(ctx, remote.Pull(ref), remote.WithTimeout(n.cfg.PullTimeout)); err != nil {
		return false, fmt.Errorf("pull %s on %s: %w", img.Tag, n.name(), err)
	}
	return true, nil
}

// deploy replaces whatever container runs with a new one of img (pulled first if needed).
func (n *node) deploy(ctx context.Context, img drill.Image) error {
	pulled, err := n.pull(ctx, img)
	if err != nil {
		return err
	}
	if !pulled {
		n.log.Info("image already on the host: no pull", "tag", img.Tag, "host", n.name())
	}
	r, err := n.remote()
	if err != nil {
		return err
	}
	ref, _ := remote.ParseImageRef(img.Ref)
	c := remote.Container{
		Name: ContainerName, Image: ref, HostPort: n.cfg.HTTPPort, ContainerPort: 5000,
		Labels: map[string]string{"deploydrill.run-id": n.cfg.Run.ID, "deploydrill.version": img.Version},
	}
	n.setRunning("")
	if _, err := r.Run(ctx, remote.Replace(c), remote.WithTimeout(n.cfg.CommandTimeout)); err != nil {
		return fmt.Errorf("run %s on %s: %w", img.Tag, n.name(), err)
	}
	n.setRunning(img.Ref)
	return nil
}

func (n *node) setRunning(ref string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.running = ref
}

func (n *node) runs(ref string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running == ref
}

// stop stops the app's container: its process is gone when docker stop returns.
func (n *node) stop(ctx context.Context) error {
	r, err := n.remote()
	if err != nil {
		return err
	}
	n.setRunning("")
	if _, err := r.Run(ctx, remote.Stop(ContainerName, n.cfg.StopGrace), remote.WithTimeout(n.cfg.StopGrace+n.cfg.CommandTimeout)); err != nil {
		return fmt.Errorf("stop the app on %s: %w", n.name(), err)
	}
	return nil
}

// nodes is a set of hosts acting together: every action runs on each at once, and the errors
// are collected.
type nodes []*node

func (ns nodes) each(ctx context.Context, act func(context.Context, *node) error) error {
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = act(ctx, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
