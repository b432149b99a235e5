package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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

func (o *buildOptions) register(f *flags) {
	f.String(&o.appDir, "app-dir", "DRILL_APP_DIR", defaultAppDir(), "the app's source directory")
	f.String(&o.baseImage, "base-image", "DRILL_BASE_IMAGE", pipeline.DefaultBaseImage,
		"Python base image: a registry reference, an image tarball (docker or OCI archive) or an OCI layout directory")
	f.String(&o.version, "version", "DRILL_VERSION", "",
		"version and image tag to build (default: the commit's short SHA, marked -dirty.<hash> for a dirty tree)")
	f.Bool(&o.requireClean, "require-clean", "DRILL_REQUIRE_CLEAN", false, "refuse to build from a dirty work tree instead of marking the tag")
	f.String(&o.imageName, "image-name", "DRILL_IMAGE_NAME", "flask-app", "image (repository) name")
	f.String(&o.cacheDir, "cache-dir", "DRILL_CACHE_DIR", defaultCacheDir(), "where local images and state are kept between runs")
	f.Bool(&o.verbose, "verbose", "DRILL_VERBOSE", false, "show the Dagger engine's progress and debug lines")
}

// defaultAppDir is app/ at the top of the git work tree, else ./app.
func defaultAppDir() string {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "app"
	}
	return filepath.Join(strings.TrimSpace(string(out)), "app")
}

// resolveRevision reads the work tree's revision, unless --version names the build.
func (o *buildOptions) resolveRevision(ctx context.Context) (*gitrev.Revision, error) {
	if o.version != "" {
		return nil, nil
	}
	rev, err := gitrev.Read(ctx, o.appDir)
	if err != nil {
		return nil, fmt.Errorf("%w (or pass --version)", err)
	}
	if rev.Dirty && o.requireClean {
		return nil, fmt.Errorf("work tree is dirty and --require-clean is set: commit or stash first")
	}
	return &rev, nil
}

func (o *buildOptions) store() (*localstore.Store, error) {
	return localstore.Open(filepath.Join(o.cacheDir, "images", o.imageName), o.imageName)
}

// job is the state the pipeline's stages hand each other. planJob checks the input; connect
// opens the Dagger session the lazy builders need.
type job struct {
	opts    *buildOptions
	log     *slog.Logger
	version string
	rev     *gitrev.Revision // where version came from; nil with --version
	appDir  string
	broken  string // a deliberately broken build (pipeline.Source.Broken); "" for a real one
	base    pipeline.Base
	client  *dagger.Client
	source  pipeline.Source
	image   *dagger.Container
	// engineLog receives the engine's progress with --verbose; nil discards it.
	engineLog io.Writer
	cleanup   []func()
}

// planJob resolves the version and parses the base image: every input, nothing started.
func planJob(ctx context.Context, o *buildOptions, log *slog.Logger, stderr io.Writer) (*job, error) {
	j := &job{opts: o, log: log, version: o.version, appDir: o.appDir}
	var err error
	if j.rev, err = o.resolveRevision(ctx); err != nil {
		return nil, err
	}
	if j.rev != nil {
		j.version = j.rev.Tag()
	}
	if j.base, err = pipeline.ParseBase(o.baseImage); err != nil {
		return nil, usageError("--base-image: %v", err)
	}
	if _, err := os.Stat(o.appDir); err != nil {
		return nil, usageError("--app-dir: %v", err)
	}
	if o.verbose {
		j.engineLog = stderr
	}
	return j, nil
}

// connect opens the Dagger session and describes the image (lazily: nothing is built yet).
func (j *job) connect(ctx context.Context) error {
	if j.client != nil {
		return nil
	}
	base := j.base
	if base.Kind == pipeline.BaseLayout {
		tmp, err := os.MkdirTemp("", "deploydrill-base-")
		if err != nil {
			return err
		}
		j.cleanup = append(j.cleanup, func() { os.RemoveAll(tmp) })
		if base, err = base.Materialize(tmp); err != nil {
			return err
		}
	}
	client, err := pipeline.Connect(ctx, j.engineLog)
	if err != nil {
		return err
	}
	j.client = client
	j.cleanup = append(j.cleanup, func() { client.Close() })
	j.base = base
	return j.describe()
}

// describe makes the job's lazy source and image from its app directory and version.
func (j *job) describe() error {
	appDir, err := filepath.Abs(j.appDir)
	if err != nil {
		return err
	}
	j.source = pipeline.Source{
		App:     j.client.Host().Directory(appDir, dagger.HostDirectoryOpts{Exclude: []string{"__pycache__", ".pytest_cache", "*.pyc"}}),
		Base:    j.base,
		Version: j.version,
		Broken:  j.broken,
	}
	j.image = pipeline.Build(j.client, j.source)
	j.log.Info(fmt.Sprintf("%s (base %s)", j.version, j.base), "phase", "version")
	return nil
}

// sibling is a job for another version of the app, from appDir, on the same Dagger session.
func (j *job) sibling(version, appDir string) *job {
	return &job{opts: j.opts, log: j.log, version: version, appDir: appDir, base: j.base, engineLog: j.engineLog}
}

// attach gives a sibling its parent's session once that is connected.
func (j *job) attach(parent *job) error {
	j.client, j.base = parent.client, parent.base
	return j.describe()
}

// newJob is planJob and connect, for the commands that only build, test or publish.
func newJob(ctx context.Context, o *buildOptions, log *slog.Logger, stderr io.Writer) (*job, error) {
	j, err := planJob(ctx, o, log, stderr)
	if err != nil {
		return nil, err
	}
	if err := j.connect(ctx); err != nil {
		j.close()
		return nil, err
	}
	return j, nil
}

func (j *job) close() {
	for i := len(j.cleanup) - 1; i >= 0; i-- {
		j.cleanup[i]()
	}
	j.cleanup = nil
}
