package pipeline_test

import (
	"context"
	"slices"
	"testing"

	"dagger.io/dagger"
	"github.com/deploydrill/deploydrill/ci/pipeline"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The pipeline builds the image with the Dagger API; app/Dockerfile is for people without
// Dagger. This test builds both from the same base and checks they make the same app.
func TestDockerfileAndPipelineBuildTheSameApp(t *testing.T) {
	t.Parallel()
	testenv.Slot(t, 1) // image builds are heavy work: the machine\'s slots bound it
	c := testenv.Dagger(t)
	reg := testenv.StartRegistry(t, "", "")
	baseImg, err := tarball.ImageFromPath(testenv.BaseImage(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	hostRef, err := name.NewTag(reg.HostAddr+"/python-base:bookworm", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(hostRef, baseImg); err != nil {
		t.Fatalf("push base: %v", err)
	}
	baseRef := reg.EngineHost + "/python-base:bookworm"
	const version = "c3d4e5f"

	fromDockerfile := c.Host().Directory(appDir(t)).DockerBuild(dagger.DirectoryDockerBuildOpts{
		BuildArgs: []dagger.BuildArg{{Name: "BASE_IMAGE", Value: baseRef}, {Name: "APP_VERSION", Value: version}},
	})
	fromPipeline := pipeline.Build(c, pipeline.Source{
		App: c.Host().Directory(appDir(t)), Base: pipeline.Base{Kind: pipeline.BaseRegistry, Ref: baseRef}, Version: version,
	})

	want, got := describe(t, fromDockerfile), describe(t, fromPipeline)
	for key := range want {
		if !slices.Equal(want[key], got[key]) {
			t.Errorf("%s differs:\n Dockerfile: %q\n pipeline:   %q", key, want[key], got[key])
		}
	}
}

// describe lists what makes the app: config fields and the files under /app with their hashes.
func describe(t *testing.T, img *dagger.Container) map[string][]string {
	t.Helper()
	ctx := t.Context()
	must := func(v string, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return []string{v}
	}
	mustList := func(v []string, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	d := map[string][]string{
		"user":       must(img.User(ctx)),
		"workdir":    must(img.Workdir(ctx)),
		"cmd":        mustList(img.DefaultArgs(ctx)),
		"entrypoint": mustList(img.Entrypoint(ctx)),
		"label":      must(img.Label(ctx, pipeline.RevisionLabel)),
		"title":      must(img.Label(ctx, pipeline.TitleLabel)),
		"env":        env(ctx, t, img),
		"ports":      ports(ctx, t, img),
		"files":      mustList(lines(img.WithUser("0").WithExec([]string{"sh", "-c", "cd /app && find . -type f | sort | xargs sha256sum"}).Stdout(ctx))),
		"appuser":    must(img.WithExec([]string{"sh", "-c", "id; getent passwd app"}).Stdout(ctx)),
		"pip-freeze": must(img.WithExec([]string{"python3", "-m", "pip", "freeze"}).Stdout(ctx)),
	}
	return d
}

func env(ctx context.Context, t *testing.T, img *dagger.Container) []string {
	vars, err := img.EnvVariables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vars {
		name, _ := v.Name(ctx)
		value, _ := v.Value(ctx)
		out = append(out, name+"="+value)
	}
	slices.Sort(out)
	return out
}

func ports(ctx context.Context, t *testing.T, img *dagger.Container) []string {
	ps, err := img.ExposedPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		n, _ := p.Port(ctx)
		proto, _ := p.Protocol(ctx)
		out = append(out, string(proto)+"/"+itoa(n))
	}
	return out
}
