package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/target/aws"
)

// runAWSDrill drills on ECR and a throwaway EC2 host. The host boots while Dagger builds,
// tests and publishes, so the run takes about max(build, boot) + deploy + windows. Teardown
// runs whatever happens: the drill's own, and again (a no-op when that one succeeded) from a
// defer for failures before the drill starts.
func runAWSDrill(ctx context.Context, o *buildOptions, d *drillOptions, a *awsOptions, stdout, stderr io.Writer) error {
	j, err := newJob(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer j.close()
	target, err := a.target(ctx, j.source.Version, d.keepVerified, j.log)
	if err != nil {
		return err
	}
	r := &drillRun{job: j, d: d, stdout: stdout, stderr: stderr}
	defer func() {
		tctx, cancel := teardownContext(ctx, d.teardownLimit)
		defer cancel()
		if terr := target.Teardown(tctx); terr != nil && r.result == nil {
			// (When the drill ran, its own teardown failed too and finish said what may be left.)
			j.log.Printf("teardown", "failed: %v", terr)
			j.log.Printf("teardown", "may be left: %s", target.Leftovers())
		}
	}()
	var registry aws.Registry
	err = runStages(ctx, j.log, []stage{
		{"registry", func(ctx context.Context) (err error) {
			registry, err = target.EnsureRegistry(ctx)
			return err
		}},
		{"build+boot", func(ctx context.Context) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error {
				return runStages(ctx, j.log, []stage{
					{"boot", target.LaunchHost},
					{"prepull", func(ctx context.Context) error { prepullRollback(ctx, j, d, target); return nil }},
				})
			})
			g.Go(func() error {
				return runStages(ctx, j.log, []stage{
					{"build", j.build},
					{"test", j.test},
					{"publish", func(ctx context.Context) (err error) {
						r.v, err = publishECR(ctx, j, registry, target.Inventory())
						if err == nil {
							fmt.Fprintln(stdout, r.v.Ref)
						}
						return err
					}},
				})
			})
			return g.Wait()
		}},
		r.drill(target, target.Inventory()),
	})
	return r.finish(target, err)
}

// publishECR pushes V to the run's repository; the ECR password reaches the engine only as a
// Dagger secret. A tag already in the repository is reused, not pushed again: the repository is
// immutable, so that tag already names this commit's artifact (ECR would refuse the push).
func publishECR(ctx context.Context, j *job, reg aws.Registry, inventory drill.Inventory) (drill.Image, error) {
	tag := j.source.Version
	if existing, err := inventory.Resolve(ctx, tag); err == nil {
		j.log.Printf("publish", "%s:%s is already in the repository (%s): reusing the immutable artifact", reg.Repository, tag, existing.Digest)
		return existing, nil
	}
	img, err := j.push(ctx, reg.Repository, reg.User, reg.Password.Reveal())
	if err != nil && !errors.Is(err, context.Canceled) {
		return drill.Image{}, fmt.Errorf("%w (an immutable repository refuses a re-push of %s with different content: commit, or pass --version)", err, tag)
	}
	return img, err
}

// prepullRollback pulls the image the drill will most likely roll back to while Dagger still
// builds: V shares its base layers, so V's own pull is then mostly cached. Best effort: the
// drill chooses and prepares K itself anyway.
func prepullRollback(ctx context.Context, j *job, d *drillOptions, target *aws.Target) {
	inventory := target.Inventory()
	records, err := inventory.List(ctx)
	if err != nil {
		j.log.Printf("prepull", "skipped: %v", err)
		return
	}
	choice, err := drill.ChooseRollback(drill.Image{Tag: j.source.Version}, records, d.rollbackTo)
	if err != nil || choice.Kind == drill.RollbackRecreate {
		j.log.Printf("prepull", "nothing to pull ahead")
		return
	}
	k, err := inventory.Resolve(ctx, choice.Tag)
	if err == nil {
		err = target.Prepare(ctx, k)
	}
	if err != nil {
		j.log.Printf("prepull", "skipped: %v", err)
		return
	}
	j.log.Printf("prepull", "%s is on the host", k.Tag)
}
