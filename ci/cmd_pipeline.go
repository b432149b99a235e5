package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"dagger.io/dagger"
	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/pipeline"
)

// registryOptions say where publish pushes. The password comes only from the environment (or
// the AWS target's ECR auth): never from a flag, so it never shows in argv.
type registryOptions struct {
	repository string
	username   string
}

const registryPasswordEnv = "DRILL_REGISTRY_PASSWORD"

func (r *registryOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&r.repository, "registry", envString("DRILL_REGISTRY", ""),
		"push to this repository (host[:port]/name) instead of the local image store (env DRILL_REGISTRY); password from env "+registryPasswordEnv)
	fs.StringVar(&r.username, "registry-username", envString("DRILL_REGISTRY_USERNAME", ""), "registry user name (env DRILL_REGISTRY_USERNAME)")
}

func buildCommand() command {
	const summary = "build the app image (lazy) and make sure it builds"
	return command{name: "build", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var o buildOptions
		var output string
		fs := newFlagSet("build", summary, stderr)
		o.register(fs)
		fs.StringVar(&output, "output", "", "also write the image as an OCI archive to this path")
		if err := parse(fs, args); err != nil {
			return err
		}
		j, err := newJob(ctx, &o, stderr)
		if err != nil {
			return err
		}
		defer j.close()
		stages := []stage{{"build", j.build}}
		if output != "" {
			stages = append(stages, stage{"export", func(ctx context.Context) error {
				_, err := j.image.Export(ctx, output)
				return err
			}})
		}
		if err := runStages(ctx, j.log, stages); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s:%s\n", o.imageName, j.source.Version)
		if output != "" {
			fmt.Fprintln(stdout, output)
		}
		return nil
	}}
}

func testCommand() command {
	const summary = "build the app and run its unit tests (pytest) in the image"
	return command{name: "test", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var o buildOptions
		fs := newFlagSet("test", summary, stderr)
		o.register(fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		j, err := newJob(ctx, &o, stderr)
		if err != nil {
			return err
		}
		defer j.close()
		var output string
		err = runStages(ctx, j.log, []stage{{"build", j.build}, {"test", func(ctx context.Context) error {
			var err error
			output, err = pipeline.Test(ctx, j.client, j.source)
			return err
		}}})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, output)
		return nil
	}}
}

func publishCommand() command {
	const summary = "build, test and publish the image under its immutable tag; prints the digest reference"
	return command{name: "publish", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var o buildOptions
		var reg registryOptions
		var skipTests bool
		fs := newFlagSet("publish", summary, stderr)
		o.register(fs)
		reg.register(fs)
		fs.BoolVar(&skipTests, "skip-tests", false, "publish without running the app's tests")
		if err := parse(fs, args); err != nil {
			return err
		}
		j, err := newJob(ctx, &o, stderr)
		if err != nil {
			return err
		}
		defer j.close()
		var img drill.Image
		stages := []stage{{"build", j.build}}
		if !skipTests {
			stages = append(stages, stage{"test", j.test})
		}
		stages = append(stages, stage{"publish", func(ctx context.Context) (err error) {
			img, err = j.publish(ctx, reg)
			return err
		}})
		if err := runStages(ctx, j.log, stages); err != nil {
			return err
		}
		fmt.Fprintln(stdout, img.Ref)
		return nil
	}}
}

func (j *job) build(ctx context.Context) error {
	_, err := j.image.Sync(ctx)
	return err
}

func (j *job) test(ctx context.Context) error {
	out, err := pipeline.Test(ctx, j.client, j.source)
	if err == nil {
		j.log.Printf("test", "%s", lastLine(out))
	}
	return err
}

// publish pushes to the registry when one is given, else stores the image in the local store.
func (j *job) publish(ctx context.Context, reg registryOptions) (drill.Image, error) {
	if reg.repository != "" {
		return j.push(ctx, reg.repository, reg.username, os.Getenv(registryPasswordEnv))
	}
	return j.publishLocal(ctx, j.image, j.source.Version)
}

// push publishes the image to repository under its version tag; the password reaches the
// engine only as a Dagger secret ("" for an anonymous registry).
func (j *job) push(ctx context.Context, repository, user, password string) (drill.Image, error) {
	tag := j.source.Version
	r := pipeline.Registry{Repository: repository, Username: user}
	if password != "" {
		r.Password = j.client.SetSecret("registry-password", password)
	}
	ref, err := pipeline.Publish(ctx, j.image, r, tag)
	if err != nil {
		return drill.Image{}, err
	}
	return drill.Image{Ref: ref, Tag: tag, Version: tag, Digest: digestOf(ref)}, nil
}

func (j *job) publishLocal(ctx context.Context, img *dagger.Container, tag string) (drill.Image, error) {
	store, err := j.opts.store()
	if err != nil {
		return drill.Image{}, err
	}
	tmp, err := os.MkdirTemp(store.Dir(), ".export-")
	if err != nil {
		return drill.Image{}, err
	}
	defer os.RemoveAll(tmp)
	archive := filepath.Join(tmp, "image.tar")
	if _, err := img.Export(ctx, archive); err != nil {
		return drill.Image{}, fmt.Errorf("export image: %w", err)
	}
	stored, err := store.AddArchive(archive, tag)
	if err != nil {
		return drill.Image{}, err
	}
	j.log.Printf("publish", "stored %s:%s in %s", j.opts.imageName, tag, store.Dir())
	return stored, nil
}

func imagesCommand() command {
	const summary = "list the image inventory: tag, digest, pushed at, verified (local store or ECR)"
	return command{name: "images", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var o buildOptions
		var a awsOptions
		var asJSON bool
		var target string
		fs := newFlagSet("images", summary, stderr)
		o.register(fs)
		a.register(fs)
		fs.StringVar(&target, "target", envString("DRILL_TARGET", "local"), "whose inventory: local (the on-disk store) or aws (the ECR repository) (env DRILL_TARGET)")
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		if err := parse(fs, args); err != nil {
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
			t, err := a.target(ctx, "", 0, newProgress(stderr))
			if err != nil {
				return err
			}
			inventory = t.Inventory()
		default:
			return fmt.Errorf("--target %q: want local or aws: %w", target, errUsage)
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
