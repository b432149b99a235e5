// Package local is the drill's default target: each deployed version runs as a Dagger service
// in a Dagger session of its own, behind a host tunnel of its own, and the target's stable
// address (a forwarder, front.go) points at the version that serves. Closing that session is
// what really stops the app's process: in v0.18.10 neither tunnel.Stop nor Service.Stop does,
// and under `dagger run` a shared client's Close does nothing. Prepare starts K ahead and waits
// until it answers, so the rollback only points the front at it.
//
// The target also injects the drill's faults (kill, hang, partition, slow, crashloop) into the
// running container, which it finds as processes on this machine (see fault.go).
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"dagger.io/dagger"
	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/environment"
	"github.com/deploydrill/deploydrill/ci/pipeline"
	"github.com/deploydrill/deploydrill/ci/probe"
	"github.com/deploydrill/deploydrill/internal/retention"
)

// Store is the local image store (localstore.Store): the publish destination, the inventory,
// the source of the archives sessions import, and what retention prunes.
type Store interface {
	environment.Store
	drill.Inventory
	WriteArchive(tag string, w io.Writer) error
	Retain(ctx context.Context, p retention.Policy) (retention.Outcome, error)
}

// Config says where versions come from and where the app is reachable.
type Config struct {
	Images  Store
	Listen  string    // host address of the tunnel, e.g. 127.0.0.1:8080
	TempDir string    // parent of this target's own directory for image archives ("" = os.TempDir)
	LogOut  io.Writer // the engine's progress; nil discards
}

// Target runs one version at a time.
type Target struct {
	cfg   Config
	port  int
	front *front
	id    string       // random: with seq, it makes every container's instanceEnv value unique
	seq   atomic.Int64 // starts so far

	mu        sync.Mutex
	running   *deployment
	prepared  map[string]*deployment // by digest: versions started ahead (Prepare), waiting for Deploy
	lastSteps []drill.Step           // how the last Deploy's version came up
	stopSteps []drill.Step           // how the last Stop went
	fault     *injected              // what Clear removes
}

type deployment struct {
	image    drill.Image
	client   *dagger.Client
	archive  string
	instance string // the container's instanceEnv value
	backend  string // host:port of its own tunnel, once started
	steps    []drill.Step
}

var (
	_ environment.Environment = (*Target)(nil)
	_ drill.Faulter           = (*Target)(nil)
	_ drill.Explainer         = (*Target)(nil)
)

// New checks the listen address; nothing starts until Deploy.
func New(cfg Config) (*Target, error) {
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("local target: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("local target: listen address %q: port must be 1-65535", cfg.Listen)
	}
	if host != "127.0.0.1" && host != "localhost" {
		return nil, fmt.Errorf("local target: listen address %q: the tunnel serves loopback only (127.0.0.1)", cfg.Listen)
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "deploydrill-local-")
	if err != nil {
		return nil, fmt.Errorf("local target: %w", err)
	}
	cfg.TempDir = dir
	id := make([]byte, 6)
	rand.Read(id)
	return &Target{cfg: cfg, port: port, front: newFront(net.JoinHostPort("127.0.0.1", portText)), id: hex.EncodeToString(id)}, nil
}

func (t *Target) Name() string { return "local" }

// Inventory is the local image store.
func (t *Target) Inventory() drill.Inventory { return t.cfg.Images }

// Registry: V is exported into the local image store.
func (t *Target) Registry(context.Context) (environment.Destination, error) {
	return environment.Destination{Store: t.cfg.Images}, nil
}

// Provision has nothing to boot: the engine is the host.
func (t *Target) Provision(context.Context) error { return nil }

// Endpoint is the tunnel's stable address.
func (t *Target) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(t.port) }

// Prepare gets K ready the way a blue/green deploy stands up the green side: it opens K's
// session, loads the image, starts the container behind a tunnel of its own and waits until K
// answers healthy there. The target's address still serves V; the rollback points it at K.
func (t *Target) Prepare(ctx context.Context, img drill.Image) error {
	t.mu.Lock()
	_, ready := t.prepared[img.Digest]
	t.mu.Unlock()
	if ready { // prepared already, while the images were built
		return nil
	}
	d, err := t.load(ctx, img)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", img.Tag, err)
	}
	if err := t.start(ctx, d); err != nil {
		return fmt.Errorf("prepare %s: %w", img.Tag, err)
	}
	if err := d.awaitHealthy(ctx); err != nil {
		return errors.Join(fmt.Errorf("prepare %s: %w", img.Tag, err), d.client.Close())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.prepared[img.Digest]; old != nil { // prepared twice at once: keep one
		old.close()
	}
	if t.prepared == nil {
		t.prepared = map[string]*deployment{}
	}
	t.prepared[img.Digest] = d
	return nil
}

// awaitHealthy polls d's own tunnel until d answers /health with its version (bounded by ctx
// and readyWait): the app's workers are up, not just its port.
func (d *deployment) awaitHealthy(ctx context.Context) error {
	start := time.Now()
	p := probe.New(time.Second)
	var last probe.Sample
	err := poll(ctx, readyWait, fmt.Sprintf("%s to answer on its tunnel %s", d.image.Tag, d.backend), func() (bool, error) {
		last = p.Probe(ctx, "http://"+d.backend, d.image.Version)
		return last.OK(), nil
	})
	if err != nil && last.Err != "" {
		return fmt.Errorf("%w (last probe: %s, %s)", err, last.Outcome, last.Err)
	}
	d.step("first healthy answer", start)
	return err
}

// readyWait bounds a prepared version's wait to answer healthy, as the drill's ready timeout
// bounds a deploy's.
const readyWait = time.Minute

// close ends d's session and waits until its container's processes are gone: the engine stops
// a session's containers after Close returns (about a second, more on a busy machine), and a
// stopped version's processes must be gone when Stop returns.
func (d *deployment) close() error {
	if err := d.client.Close(); err != nil {
		return err
	}
	if d.backend == "" {
		return nil // never started: no container
	}
	return poll(context.Background(), exitWait, "the processes of "+d.image.Tag+" to exit once its session ended", func() (bool, error) {
		return len(processesWithEnv(instanceEnv+"="+d.instance)) == 0, nil
	})
}

// exitWait bounds close's wait for a session's container to go.
const exitWait = 30 * time.Second

// step records how long one step of d's start took, from start to now.
func (d *deployment) step(name string, start time.Time) {
	d.steps = append(d.steps, drill.Step{Name: name, Took: time.Since(start)})
}

// load opens a session for img and imports the image into the engine.
func (t *Target) load(ctx context.Context, img drill.Image) (*deployment, error) {
	start := time.Now()
	archive, err := t.archive(img)
	if err != nil {
		return nil, err
	}
	archived := time.Now()
	// The session lives until Stop or Teardown closes it (or this process dies: the session
	// child exits when its stdin closes), not until the caller's ctx ends: a prepared session
	// must outlive Prepare's context.
	client, err := pipeline.ConnectPrivate(context.WithoutCancel(ctx), t.cfg.LogOut)
	if err != nil {
		return nil, err
	}
	instance := fmt.Sprintf("%s-%d", t.id, t.seq.Add(1))
	d := &deployment{image: img, client: client, archive: archive, instance: instance}
	d.steps = append(d.steps, drill.Step{Name: "image archive", Took: archived.Sub(start)})
	d.step("engine session", archived)
	loaded := time.Now()
	if _, err := d.container().Sync(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("load image: %w", err), client.Close())
	}
	d.step("image import", loaded)
	return d, nil
}

func (d *deployment) container() *dagger.Container {
	return d.client.Container().
		Import(d.client.Host().File(d.archive)).
		// Import does not restore the exposed port; the service's readiness check needs it.
		WithExposedPort(pipeline.AppPort)
}

// take returns the version prepared for img, if there is one.
func (t *Target) take(img drill.Image) *deployment {
	d := t.prepared[img.Digest]
	delete(t.prepared, img.Digest)
	return d
}

func (t *Target) archive(img drill.Image) (string, error) {
	path := filepath.Join(t.cfg.TempDir, img.Digest+".tar")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp, err := os.CreateTemp(t.cfg.TempDir, ".partial-*.tar")
	if err != nil {
		return "", fmt.Errorf("archive %s: %w", img.Tag, err)
	}
	defer os.Remove(tmp.Name())
	if err := t.cfg.Images.WriteArchive(img.Tag, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("archive %s: %w", img.Tag, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("archive %s: %w", img.Tag, err)
	}
	return path, os.Rename(tmp.Name(), path)
}

// Deploy makes img the serving version: a prepared one (already up behind its own tunnel) by
// pointing the target's address at it, any other by starting it in a new session first. It
// refuses while a version runs (the drill stops the old one first) and while a crashloop
// restarts one.
func (t *Target) Deploy(ctx context.Context, img drill.Image) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fault != nil && t.fault.fault.Kind == drill.FaultCrashloop {
		return fmt.Errorf("deploy %s: a crashloop is injected; clear it first", img.Tag)
	}
	if t.running != nil {
		return fmt.Errorf("deploy %s: %s is still running; stop it first", img.Tag, t.running.image.Tag)
	}
	d := t.take(img)
	if d != nil {
		// Say which steps were done ahead (Prepare), so the phase's own time is the switch.
		for i := range d.steps {
			d.steps[i].Name = "ahead: " + d.steps[i].Name
		}
	} else {
		var err error
		if d, err = t.load(ctx, img); err != nil {
			return fmt.Errorf("deploy %s: %w", img.Tag, err)
		}
		if err := t.start(ctx, d); err != nil {
			return fmt.Errorf("deploy %s: %w", img.Tag, err)
		}
	}
	if err := t.serve(d); err != nil {
		return fmt.Errorf("deploy %s: %w", img.Tag, errors.Join(err, d.client.Close()))
	}
	return nil
}

// serve points the target's address at d and makes it the running version. Called with t.mu.
func (t *Target) serve(d *deployment) error {
	start := time.Now()
	if err := t.front.serve(d.backend); err != nil {
		return err
	}
	d.step("switch "+t.cfg.Listen+" to it", start)
	t.running = d
	t.lastSteps = d.steps
	return nil
}

// start runs d's container as a service behind a tunnel of its own (a free port on this
// machine); on failure it closes d's session.
func (t *Target) start(ctx context.Context, d *deployment) error {
	begin := time.Now()
	svc := d.container().WithEnvVariable(instanceEnv, d.instance).AsService()
	tunnel := d.client.Host().Tunnel(svc, dagger.HostTunnelOpts{
		Ports: []dagger.PortForward{{Frontend: 0, Backend: pipeline.AppPort, Protocol: dagger.NetworkProtocolTcp}},
	})
	started, err := tunnel.Start(ctx)
	if err != nil {
		return errors.Join(fmt.Errorf("start service and tunnel: %w", err), d.client.Close())
	}
	endpoint, err := started.Endpoint(ctx)
	if err != nil {
		return errors.Join(fmt.Errorf("the tunnel's address: %w", err), d.client.Close())
	}
	d.backend = endpoint
	d.step("container and tunnel", begin)
	return nil
}

// Stop ends the running version's session: the engine kills its container and the tunnel's
// listener goes away, so probes see "connection refused". An injected fault goes with it:
// frozen processes are killed rather than thawed and a crashloop's restarts end first (so the
// faulty version never answers again on its way out), then Clear removes what is left.
func (t *Target) Stop(ctx context.Context) error {
	t.mu.Lock()
	f := t.fault
	t.mu.Unlock()
	var errs []error
	if f != nil && f.halt != nil {
		if err := f.halt(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop: end the %s fault: %w", f.fault.Kind, err))
		}
	}
	if err := t.closeRunning(); err != nil {
		errs = append(errs, fmt.Errorf("stop %w", err))
	}
	if f != nil {
		if err := t.Clear(ctx); err != nil {
			// The container is gone: forget the fault and let go of its network namespace,
			// whose last reference (and with it any rule inside) this was.
			errs = append(errs, fmt.Errorf("stop: %w", err))
			t.mu.Lock()
			if t.fault == f {
				t.fault = nil
			}
			t.mu.Unlock()
			if f.c != nil {
				f.c.close()
			}
		}
	}
	return errors.Join(errs...)
}

// closeRunning ends the running version's session, if any.
func (t *Target) closeRunning() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closeRunningLocked()
}

func (t *Target) closeRunningLocked() error {
	d := t.running
	if d == nil {
		return nil
	}
	start := time.Now()
	t.front.down() // the address refuses at once, as the app's port does once it stops
	downed := time.Now()
	t.running = nil
	err := d.close() // the engine stops the container with the session
	t.stopSteps = []drill.Step{{Name: "close " + t.cfg.Listen, Took: downed.Sub(start)},
		{Name: "end the engine session (the container with it)", Took: time.Since(downed)}}
	if err != nil {
		return fmt.Errorf("%s: %w", d.image.Tag, err)
	}
	return nil
}

// DeploySteps says how the version the last Deploy served came up.
func (t *Target) DeploySteps() []drill.Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.lastSteps)
}

// StopSteps says how the last stop of the running version went.
func (t *Target) StopSteps() []drill.Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.stopSteps)
}

// Teardown clears an injected fault, stops whatever still runs, closes the prepared sessions,
// removes the archives and applies retention to the store. Idempotent.
func (t *Target) Teardown(ctx context.Context, keep retention.Policy) (environment.Teardown, error) {
	var td environment.Teardown
	var errs []error
	step := func(name string, run func() error, left string) {
		start := time.Now()
		err := run()
		s := environment.Step{Name: name, Took: time.Since(start)}
		if err != nil {
			s.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			if left != "" {
				td.Left = append(td.Left, left)
			}
		}
		td.Steps = append(td.Steps, s)
	}
	step("clear the injected fault", func() error { return t.Clear(ctx) },
		"the injected fault (it ends with the app's container: see the error)")
	step("stop the running version", func() error { return t.Stop(ctx) },
		"the running version's Dagger session (it ends when this process exits)")
	step("close the prepared sessions", func() error {
		t.mu.Lock()
		defer t.mu.Unlock()
		var errs []error
		for digest, d := range t.prepared {
			errs = append(errs, d.close())
			delete(t.prepared, digest)
		}
		return errors.Join(errs...)
	}, "the prepared versions' Dagger sessions (they end when this process exits)")
	step("remove image archives", func() error { return os.RemoveAll(t.cfg.TempDir) }, t.cfg.TempDir)
	step("retention", func() error {
		out, err := t.cfg.Images.Retain(ctx, keep)
		td.Retention = out.String()
		return err
	}, "")
	if slices.Contains(td.Left, t.cfg.TempDir) {
		td.Sweep = "rm -rf " + t.cfg.TempDir
	}
	if err := errors.Join(errs...); err != nil {
		return td, fmt.Errorf("teardown: %w", err)
	}
	return td, nil
}
