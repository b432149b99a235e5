package local

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

const (
	// restartBackoff is how long the restart loop waits after a start that failed.
	restartBackoff = time.Second
	// stepTimeout bounds one start or one kill of the loop.
	stepTimeout = 2 * time.Minute
	// serveWait bounds the wait for a restarted app to answer /health, where its uptime starts.
	serveWait = time.Minute
)

// startCrashloop runs the restart policy of a crashlooping app in the background: start img in
// a fresh session (the Deploy path), let it answer for f.Uptime, SIGKILL it and end its session,
// start it again. Called with t.mu held, after Inject crashed the running version.
//
// Ending the loop never cancels a start in flight: a service whose start is cancelled can come
// up after its session is gone (seen: the app running on after Clear returned). The loop
// finishes the step, then stops, and what it started last is closed like any deployment.
func (t *Target) startCrashloop(f drill.Fault, img drill.Image) *injected {
	quit := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	var loop crashloop
	go func() {
		defer close(done)
		loop.run(t, quit, f.Uptime, img)
	}()
	stop := func(wait context.Context) error {
		once.Do(func() { close(quit) })
		select {
		case <-done:
			return nil
		case <-wait.Done():
			return fmt.Errorf("waiting for the restart loop to end: %w", context.Cause(wait))
		}
	}
	return &injected{
		fault: f,
		halt:  stop,
		undo: func(ctx context.Context) error {
			if err := stop(ctx); err != nil {
				return err // a later Stop ends what it left running
			}
			// What the loop started last goes too: the drill deploys K next.
			err := t.closeIfRunning(loop.last)
			if loop.failed > 0 {
				err = errors.Join(err, fmt.Errorf("%d of %d restarts failed, the last with: %w", loop.failed, loop.starts, loop.lastErr))
			}
			return err
		},
	}
}

// crashloop is the loop's record, read once the loop has ended.
type crashloop struct {
	starts, failed int
	lastErr        error
	last           *deployment // the latest start
}

func (l *crashloop) fail(err error) { l.failed, l.lastErr = l.failed+1, err }

// run restarts img until quit is closed.
func (l *crashloop) run(t *Target, quit <-chan struct{}, uptime time.Duration, img drill.Image) {
	for {
		select {
		case <-quit:
			return
		default:
		}
		l.starts++
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		d, err := t.restart(ctx, img)
		cancel()
		if err != nil {
			l.fail(err)
			select {
			case <-quit:
				return
			case <-time.After(restartBackoff):
			}
			continue
		}
		l.last = d
		// Up is answering: the tunnel opens once the engine can connect to the app's port, which
		// gunicorn's master binds before its workers have loaded the app (a second or more on a
		// loaded machine). An uptime counted from there can end every start before one answer.
		if err := t.waitServing(quit, img); err != nil {
			select {
			case <-quit:
				return // Clear or Stop ends d's session
			default:
			}
			l.fail(err) // crash it all the same: the loop goes on
		}
		select { // the app's uptime: the fault's own timing, not a wait for a condition
		case <-quit:
			return // Clear or Stop ends d's session
		case <-time.After(uptime):
		}
		ctx, cancel = context.WithTimeout(context.Background(), stepTimeout)
		err = l.crash(ctx, t, d)
		cancel()
		if err != nil {
			l.fail(err)
		}
	}
}

// waitServing polls the endpoint until img answers /health, quit is closed or serveWait passes.
func (t *Target) waitServing(quit <-chan struct{}, img drill.Image) error {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case <-quit:
			cancel(errors.New("the restart loop ends"))
		case <-ctx.Done():
		}
	}()
	p := probe.New(time.Second)
	var last probe.Sample
	err := poll(ctx, serveWait, fmt.Sprintf("%s to answer on %s", img.Tag, t.Endpoint()), func() (bool, error) {
		last = p.Probe(ctx, t.Endpoint(), img.Version)
		return last.OK(), nil
	})
	if err != nil && last.Err != "" {
		return fmt.Errorf("%w (last probe: %s, %s)", err, last.Outcome, last.Err)
	}
	return err
}

// crash kills d's container and ends its session, unless d is no longer the running version.
func (l *crashloop) crash(ctx context.Context, t *Target, d *deployment) error {
	c, findErr := findContainer(ctx, d.instance, findWait)
	if c != nil {
		defer c.close()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running != d { // Stop took it meanwhile
		return nil
	}
	if findErr != nil {
		return errors.Join(findErr, t.closeRunningLocked())
	}
	return t.crashLocked(ctx, c)
}

// closeIfRunning ends d's session if d is still the running version.
func (t *Target) closeIfRunning(d *deployment) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d == nil || t.running != d {
		return nil
	}
	return t.closeRunningLocked()
}

// restart starts img in a fresh session and makes it the running version.
func (t *Target) restart(ctx context.Context, img drill.Image) (*deployment, error) {
	d, err := t.load(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("restart %s: %w", img.Tag, err)
	}
	if err := t.start(ctx, d); err != nil {
		return nil, fmt.Errorf("restart %s: %w", img.Tag, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running != nil { // cannot happen while the fault is recorded; never run two
		return nil, errors.Join(fmt.Errorf("restart %s: %s runs already", img.Tag, t.running.image.Tag), d.client.Close())
	}
	if err := t.serve(d); err != nil {
		return nil, fmt.Errorf("restart %s: %w", img.Tag, errors.Join(err, d.client.Close()))
	}
	return d, nil
}
