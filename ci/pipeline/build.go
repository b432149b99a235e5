// Package pipeline holds the Dagger stages of the drill: Build, Test, Publish and Export.
// Builders that describe a container are lazy (no ctx); steps that run something take ctx and
// return (T, error).
package pipeline

import (
	"strconv"

	"dagger.io/dagger"
)

// The image's contract, shared with app/Dockerfile (a test builds both and compares them).
const (
	AppPort        = 5000
	AppUser        = "10001:10001"
	AppDir         = "/app"
	RevisionLabel  = "org.opencontainers.image.revision"
	TitleLabel     = "org.opencontainers.image.title"
	AppTitle       = "flask-app"
	VersionEnvName = "APP_VERSION"
	BrokenEnvName  = "APP_BROKEN"
)

// AppCommand is the image's CMD.
var AppCommand = []string{
	"gunicorn", "--config", "gunicorn.conf.py",
	"--bind", "0.0.0.0:" + strconv.Itoa(AppPort), "--worker-tmp-dir", "/dev/shm", "app:app",
}

// Source is what the image is built from.
type Source struct {
	App     *dagger.Directory // the app/ directory
	Base    Base
	Version string // baked in as APP_VERSION and the revision label
	// Broken, when set ("unhealthy", "wrong-version"), makes a deliberately broken build of
	// the same source for the bad-deploy fault (APP_BROKEN, app.py); "" for a real build.
	Broken string
}

// Dependencies is the base with the app's requirements installed and its user created: the
// layers every version shares, so a new version rebuilds only the last few.
func Dependencies(c *dagger.Client, src Source) *dagger.Container {
	return src.Base.Container(c).
		WithEnvVariable("PYTHONDONTWRITEBYTECODE", "1").
		WithEnvVariable("PYTHONUNBUFFERED", "1").
		WithEnvVariable("PIP_NO_CACHE_DIR", "1").
		WithEnvVariable("PIP_DISABLE_PIP_VERSION_CHECK", "1").
		// Debian's python is "externally managed"; python:3.12-slim ignores this.
		WithEnvVariable("PIP_BREAK_SYSTEM_PACKAGES", "1").
		WithWorkdir(AppDir).
		WithFile(AppDir+"/requirements.txt", src.App.File("requirements.txt")).
		WithExec([]string{"python3", "-m", "pip", "install", "-r", "requirements.txt"}).
		WithExec([]string{"useradd", "--system", "--uid", "10001", "--user-group", "--no-create-home", "--home-dir", AppDir, "app"})
}

// Build is the app image for src.Version, the same recipe as app/Dockerfile.
func Build(c *dagger.Client, src Source) *dagger.Container {
	version := src.Version
	if version == "" {
		version = "unknown"
	}
	return Dependencies(c, src).
		WithFile(AppDir+"/app.py", src.App.File("app.py")).
		WithFile(AppDir+"/gunicorn.conf.py", src.App.File("gunicorn.conf.py")).
		WithLabel(RevisionLabel, version).
		WithLabel(TitleLabel, AppTitle).
		WithEnvVariable(VersionEnvName, version).
		WithEnvVariable(BrokenEnvName, src.Broken).
		WithUser(AppUser).
		WithExposedPort(AppPort).
		WithDefaultArgs(AppCommand)
}
