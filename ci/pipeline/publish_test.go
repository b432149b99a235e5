package pipeline_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/deploydrill/deploydrill/ci/pipeline"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestPublishPushesWithAuthAndReturnsTheDigestReference(t *testing.T) {
	t.Parallel()
	testenv.Slot(t, 1) // image builds are heavy work: the machine\'s slots bound it
	c := testenv.Dagger(t)
	reg := testenv.StartRegistry(t, "AWS", "s3cret-token")
	img := pipeline.Build(c, source(t, c, appDir(t), "b2c3d4e"))
	repo := reg.EngineHost + "/flask-app"

	ref, err := pipeline.Publish(t.Context(), img, pipeline.Registry{
		Repository: repo, Username: reg.User, Password: c.SetSecret("pw", reg.Password),
	}, "b2c3d4e")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, repo+"@sha256:") {
		t.Fatalf("ref = %q, want %s@sha256:...", ref, repo)
	}

	// Ground truth from the registry itself: the tag points at the returned digest.
	tag, err := name.NewTag(reg.HostAddr+"/flask-app:b2c3d4e", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(tag, remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password}))
	if err != nil {
		t.Fatalf("the tag is in the registry: %v", err)
	}
	if got := desc.Digest.String(); !strings.HasSuffix(ref, got) {
		t.Errorf("registry has %s, Publish returned %s", got, ref)
	}
	pushed, err := remote.Image(tag, remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password}))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pushed.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Config.Labels[pipeline.RevisionLabel]; got != "b2c3d4e" {
		t.Errorf("pushed image's revision label = %q, want b2c3d4e", got)
	}
	if !slices.Contains(cfg.Config.Env, pipeline.VersionEnvName+"=b2c3d4e") {
		t.Errorf("pushed image's env %q lacks APP_VERSION=b2c3d4e", cfg.Config.Env)
	}

	// A session of its own: the engine remembers credentials per session and host.
	anonymous := testenv.Dagger(t)
	_, err = pipeline.Publish(t.Context(), pipeline.Build(anonymous, source(t, anonymous, appDir(t), "b2c3d4e")),
		pipeline.Registry{Repository: repo}, "anonymous")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("publishing without credentials fails with 401, got %v", err)
	}
}
