package pipeline_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"dagger.io/dagger"
	"github.com/deploydrill/deploydrill/ci/pipeline"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

func appDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../app")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func source(t *testing.T, c *dagger.Client, dir, version string) pipeline.Source {
	t.Helper()
	base, err := pipeline.ParseBase(testenv.BaseImage(t))
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Source{App: c.Host().Directory(dir), Base: base, Version: version}
}

// health starts img as a service and fetches /health from another container.
func health(t *testing.T, c *dagger.Client, base *dagger.Container, img *dagger.Container) map[string]string {
	t.Helper()
	out, err := base.
		WithServiceBinding("app", img.AsService()).
		WithExec([]string{"python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://app:5000/health', timeout=10).read().decode())"}).
		Stdout(t.Context())
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatalf("/health body %q: %v", out, err)
	}
	return body
}

func TestBuildBakesTheVersionIntoTheImage(t *testing.T) {
	t.Parallel()
	testenv.Slot(t, 1) // image builds are heavy work: the machine\'s slots bound it
	c := testenv.Dagger(t)
	src := source(t, c, appDir(t), "a1b2c3d")
	img := pipeline.Build(c, src)
	ctx := t.Context()

	if label, _ := img.Label(ctx, pipeline.RevisionLabel); label != "a1b2c3d" {
		t.Errorf("revision label = %q, want a1b2c3d", label)
	}
	if user, _ := img.User(ctx); user != pipeline.AppUser {
		t.Errorf("user = %q, want the non-root %s", user, pipeline.AppUser)
	}
	if args, _ := img.DefaultArgs(ctx); !slices.Equal(args, pipeline.AppCommand) {
		t.Errorf("default args = %q", args)
	}
	if got := health(t, c, src.Base.Container(c), img); got["status"] != "ok" || got["version"] != "a1b2c3d" {
		t.Errorf("/health = %v, want ok a1b2c3d", got)
	}
	unversioned := img.WithoutEnvVariable(pipeline.VersionEnvName)
	if got := health(t, c, src.Base.Container(c), unversioned); got["version"] != "unknown" {
		t.Errorf("/health without APP_VERSION = %v, want version unknown", got)
	}
}

func TestTestStageReportsPytestOutputWhenATestFails(t *testing.T) {
	t.Parallel()
	testenv.Slot(t, 1) // image builds are heavy work: the machine\'s slots bound it
	c := testenv.Dagger(t)
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(appDir(t))); err != nil {
		t.Fatal(err)
	}
	failing := "def test_deliberately_broken():\n    assert 1 == 2, 'broken on purpose'\n"
	if err := os.WriteFile(filepath.Join(dir, "tests", "test_broken.py"), []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := pipeline.Test(t.Context(), c, source(t, c, dir, "t"))
	if err == nil {
		t.Fatalf("a failing app test must fail the stage; output:\n%s", out)
	}
	for _, want := range []string{"app tests failed", "test_deliberately_broken", "broken on purpose"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	if out, err := pipeline.Test(t.Context(), c, source(t, c, appDir(t), "t")); err != nil || !strings.Contains(out, "passed") {
		t.Errorf("the real app's tests pass: %v\n%s", err, out)
	}
}
