package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"dagger.io/dagger"
	"github.com/deploydrill/deploydrill/ci/gitrev"
	"github.com/deploydrill/deploydrill/ci/localstore"
	"github.com/deploydrill/deploydrill/ci/pipeline"
)

// buildOptions are the flags every pipeline command shares.
type buildOptions struct {
	appDir       string
	baseImage    string
	version      string
	requireClean bool
	imageName    string
	cacheDir     string
	verbose      bool
}

func (o *buildOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.appDir, "app-dir", envString("DRILL_APP_DIR", defaultAppDir()), "the app's source directory (env DRILL_APP_DIR)")
	fs.StringVar(&o.baseImage, "base-image", envString("DRILL_BASE_IMAGE", pipeline.DefaultBaseImage),
		"Python base image: a registry reference, an image tarball (docker or OCI archive) or an OCI layout directory (env DRILL_BASE_IMAGE)")
	fs.StringVar(&o.version, "version", envString("DRILL_VERSION", ""),
		"version and image tag to build (env DRILL_VERSION; default: the commit's short SHA, marked -dirty.<hash> for a dirty tree)")
	fs.BoolVar(&o.requireClean, "require-clean", envBool("DRILL_REQUIRE_CLEAN", false), "refuse to build from a dirty work tree instead of marking the tag (env DRILL_REQUIRE_CLEAN)")
	fs.StringVar(&o.imageName, "image-name", envString("DRILL_IMAGE_NAME", "flask-app"), "image (repository) name (env DRILL_IMAGE_NAME)")
	fs.StringVar(&o.cacheDir, "cache-dir", envString("DRILL_CACHE_DIR", defaultCacheDir()), "where local images and state are kept between runs (env DRILL_CACHE_DIR)")
	fs.BoolVar(&o.verbose, "verbose", envBool("DRILL_VERBOSE", false), "show the Dagger engine's progress (env DRILL_VERBOSE)")
}

// defaultAppDir is app/ at the top of the git work tree, else ./app.
func defaultAppDir() string {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "app"
	}
	return filepath.Join(strings.TrimSpace(string(out)), "app")
}

// resolveVersion is --version, or the tag the work tree's revision earns.
func (o *buildOptions) resolveVersion(ctx context.Context) (string, error) {
	if o.version != "" {
		return o.version, nil
	}
	rev, err := gitrev.Read(ctx, o.appDir)
	if err != nil {
		return "", fmt.Errorf("%w (or pass --version)", err)
	}
	if rev.Dirty && o.requireClean {
		return "", fmt.Errorf("work tree is dirty and --require-clean is set: commit or stash first")
	}
	return rev.Tag(), nil
}

func (o *buildOptions) store() (*localstore.Store, error) {
	return localstore.Open(filepath.Join(o.cacheDir, "images", o.imageName), o.imageName)
}

// job is the state the pipeline's stages hand each other.
type job struct {
	opts   *buildOptions
	log    *progress
	client *dagger.Client
	source pipeline.Source
	image  *dagger.Container
	// engineLog receives the engine's progress with --verbose; nil discards it.
	engineLog io.Writer
	cleanup   []func()
}

// newJob connects to Dagger and resolves the version and base image: everything the lazy
// builders need.
func newJob(ctx context.Context, o *buildOptions, stderr io.Writer) (*job, error) {
	j := &job{opts: o, log: newProgress(stderr)}
	version, err := o.resolveVersion(ctx)
	if err != nil {
		return nil, err
	}
	base, err := pipeline.ParseBase(o.baseImage)
	if err != nil {
		return nil, err
	}
	if base.Kind == pipeline.BaseLayout {
		tmp, err := os.MkdirTemp("", "deploydrill-base-")
		if err != nil {
			return nil, err
		}
		j.cleanup = append(j.cleanup, func() { os.RemoveAll(tmp) })
		if base, err = base.Materialize(tmp); err != nil {
			j.close()
			return nil, err
		}
	}
	if o.verbose {
		j.engineLog = stderr
	}
	if j.client, err = pipeline.Connect(ctx, j.engineLog); err != nil {
		j.close()
		return nil, err
	}
	j.cleanup = append(j.cleanup, func() { j.client.Close() })
	appDir, err := filepath.Abs(o.appDir)
	if err != nil {
		j.close()
		return nil, err
	}
	j.source = pipeline.Source{
		App:     j.client.Host().Directory(appDir, dagger.HostDirectoryOpts{Exclude: []string{"__pycache__", ".pytest_cache", "*.pyc"}}),
		Base:    base,
		Version: version,
	}
	j.image = pipeline.Build(j.client, j.source)
	j.log.Printf("version", "%s (base %s)", version, base)
	return j, nil
}

func (j *job) close() {
	for i := len(j.cleanup) - 1; i >= 0; i-- {
		j.cleanup[i]()
	}
	j.cleanup = nil
}
