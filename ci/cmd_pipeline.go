package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/environment"
	"github.com/deploydrill/deploydrill/ci/pipeline"
	"github.com/deploydrill/deploydrill/ci/targets/aws"
)

// registryOptions say where publish pushes. The password comes only from the environment (or
// the AWS target's ECR auth): never from a flag, so it never shows in argv.
type registryOptions struct {
	repository string
	username   string
}

const registryPasswordEnv = "DRILL_REGISTRY_PASSWORD"

func (r *registryOptions) register(f *flags) {
	f.String(&r.repository, "registry", "DRILL_REGISTRY", "",
		"push to this repository (host[:port]/name) instead of the local image store; password from env "+registryPasswordEnv)
	f.String(&r.username, "registry-username", "DRILL_REGISTRY_USERNAME", "", "registry user name")
}

// pipelineRun is the state of the build, test and publish commands.
type pipelineRun struct {
	*job
	stdout io.Writer
}

func (p *pipelineRun) logger() *slog.Logger { return p.log }

// pipelineCommand parses the shared build flags (and extra), plans and connects the job, and
// runs the command's stages.
func pipelineCommand(name, summary string, extra func(f *flags), stages func() []stage[*pipelineRun]) command {
	return command{name: name, summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var o buildOptions
		f := newFlags(name, summary, stderr)
		o.register(f)
		if extra != nil {
			extra(f)
		}
		if err := f.parse(args); err != nil {
			return err
		}
		j, err := newJob(ctx, &o, newLogger(stderr, o.verbose), stderr)
		if err != nil {
			return err
		}
		defer j.close()
		return runStages(ctx, &pipelineRun{job: j, stdout: stdout}, stages())
	}}
}

func buildCommand() command {
	var output string
	return pipelineCommand("build", "build the app image (lazy) and make sure it builds",
		func(f *flags) {
			f.String(&output, "output", "", "", "also write the image as an OCI archive to this path")
		},
		func() []stage[*pipelineRun] {
			return []stage[*pipelineRun]{
				{name: "build", run: func(p *pipelineRun, ctx context.Context) error { return p.build(ctx) }},
				{name: "export", skip: func(*pipelineRun) string { return noOutput(output) }, run: func(p *pipelineRun, ctx context.Context) error {
					_, err := p.image.Export(ctx, output)
					return err
				}},
				{name: "result", run: func(p *pipelineRun, _ context.Context) error {
					fmt.Fprintf(p.stdout, "%s:%s\n", p.opts.imageName, p.version)
					if output != "" {
						fmt.Fprintln(p.stdout, output)
					}
					return nil
				}},
			}
		})
}

func noOutput(path string) string {
	if path == "" {
		return "no --output"
	}
	return ""
}

func testCommand() command {
	return pipelineCommand("test", "build the app and run its unit tests (pytest) in the image", nil,
		func() []stage[*pipelineRun] {
			return []stage[*pipelineRun]{
				{name: "build", run: func(p *pipelineRun, ctx context.Context) error { return p.build(ctx) }},
				{name: "test", run: func(p *pipelineRun, ctx context.Context) error {
					out, err := pipeline.Test(ctx, p.client, p.source)
					if err == nil {
						fmt.Fprintln(p.stdout, out)
					}
					return err
				}},
			}
		})
}

func publishCommand() command {
	var reg registryOptions
	var skipTests bool
	return pipelineCommand("publish", "build, test and publish the image under its immutable tag; prints the digest reference",
		func(f *flags) {
			reg.register(f)
			f.Bool(&skipTests, "skip-tests", "", false, "publish without running the app's tests")
		},
		func() []stage[*pipelineRun] {
			return []stage[*pipelineRun]{
				{name: "build", run: func(p *pipelineRun, ctx context.Context) error { return p.build(ctx) }},
				{name: "test", skip: func(*pipelineRun) string { return skipped(skipTests) }, run: func(p *pipelineRun, ctx context.Context) error { return p.test(ctx) }},
				{name: "publish", run: func(p *pipelineRun, ctx context.Context) error {
					dest, err := reg.destination(p.opts)
					if err != nil {
						return err
					}
					img, err := p.publishTo(ctx, dest, nil)
					if err == nil {
						fmt.Fprintln(p.stdout, img.Ref)
					}
					return err
				}},
			}
		})
}

func skipped(skip bool) string {
	if skip {
		return "--skip-tests"
	}
	return ""
}

// destination is --registry, else the local image store.
func (r registryOptions) destination(o *buildOptions) (environment.Destination, error) {
	if r.repository != "" {
		d := environment.Destination{Repository: r.repository, User: r.username}
		if pw := os.Getenv(registryPasswordEnv); pw != "" {
			d.Password = plainSecret(pw)
		}
		return d, nil
	}
	store, err := o.store()
	return environment.Destination{Store: store}, err
}

// plainSecret is a password from the environment; it reaches the engine only as a Dagger secret.
type plainSecret string

func (s plainSecret) Reveal() string { return string(s) }
func (s plainSecret) String() string { return "[redacted]" }

func (j *job) build(ctx context.Context) error {
	_, err := j.image.Sync(ctx)
	return err
}

func (j *job) test(ctx context.Context) error {
	out, err := pipeline.Test(ctx, j.client, j.source)
	if err == nil {
		j.log.Info(lastLine(out), "phase", "test")
	}
	return err
}

// publishTo puts the image where dest says. An immutable registry that already holds the tag
// keeps it: that tag already names this commit's artifact (and the registry would refuse the
// push), so the existing image is reused.
func (j *job) publishTo(ctx context.Context, dest environment.Destination, inventory drill.Inventory) (drill.Image, error) {
	if dest.Store != nil {
		return j.publishLocal(ctx, dest.Store)
	}
	tag := j.version
	if dest.Immutable && inventory != nil {
		if existing, err := inventory.Resolve(ctx, tag); err == nil {
			j.log.Info(fmt.Sprintf("%s:%s is already in the repository (%s): reusing the immutable artifact", dest.Repository, tag, existing.Digest), "phase", "publish")
			return existing, nil
		}
	}
	r := pipeline.Registry{Repository: dest.Repository, Username: dest.User}
	if dest.Password != nil {
		r.Password = j.client.SetSecret("registry-password", dest.Password.Reveal())
	}
	ref, err := pipeline.Publish(ctx, j.image, r, tag)
	if err != nil {
		if dest.Immutable && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w (an immutable repository refuses a re-push of %s with different content: commit, or pass --version)", err, tag)
		}
		return drill.Image{}, err
	}
	return drill.Image{Ref: ref, Tag: tag, Version: tag, Digest: digestOf(ref)}, nil
}

func (j *job) publishLocal(ctx context.Context, store environment.Store) (drill.Image, error) {
	tmp, err := os.MkdirTemp(store.Dir(), ".export-")
	if err != nil {
		return drill.Image{}, err
	}
	defer os.RemoveAll(tmp)
	archive := filepath.Join(tmp, "image.tar")
	if _, err := j.image.Export(ctx, archive); err != nil {
		return drill.Image{}, fmt.Errorf("export image: %w", err)
	}
	stored, err := store.AddArchive(archive, j.version)
	if err != nil {
		return drill.Image{}, err
	}
	j.log.Info(fmt.Sprintf("stored %s:%s in %s", j.opts.imageName, j.version, store.Dir()), "phase", "publish")
	return stored, nil
}

func imagesCommand() command {
	const summary = "list the image inventory: tag, digest, pushed at, verified (local store or ECR)"
	return command{name: "images", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var o buildOptions
		var a awsOptions
		var asJSON bool
		var target string
		f := newFlags("images", summary, stderr)
		o.register(f)
		a.registerAccount(f)
		f.String(&target, "target", "DRILL_TARGET", "local", "whose inventory: local (the on-disk store) or aws (the ECR repository)")
		f.Bool(&asJSON, "json", "", false, "print JSON instead of a table")
		if err := f.parse(args); err != nil {
			return err
		}
		var inventory drill.Inventory
		switch target {
		case "local":
			store, err := o.store()
			if err != nil {
				return err
			}
			inventory = store
		case "aws":
			cfg, err := a.load(ctx)
			if err != nil {
				return err
			}
			inventory = aws.NewInventory(cfg, a.repository)
		default:
			return usageError("--target %q: want %s", target, targetNames())
		}
		records, err := inventory.List(ctx)
		if err != nil {
			return err
		}
		return printInventory(stdout, records, asJSON)
	}}
}

func printInventory(w io.Writer, records []drill.Record, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if records == nil {
			records = []drill.Record{}
		}
		return enc.Encode(records)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tDIGEST\tPUSHED\tVERIFIED")
	for _, r := range records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", r.Tag, r.Digest, r.PushedAt.Local().Format(time.DateTime), r.Verified)
	}
	return tw.Flush()
}
