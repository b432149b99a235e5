package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"dagger.io/dagger"
)

// TestContainer runs pytest as the app's user in the app image plus the dev requirements.
func TestContainer(c *dagger.Client, src Source) *dagger.Container {
	return Build(c, src).
		WithUser("0:0").
		WithFile(AppDir+"/requirements-dev.txt", src.App.File("requirements-dev.txt")).
		WithExec([]string{"python3", "-m", "pip", "install", "-r", "requirements-dev.txt"}).
		WithDirectory(AppDir+"/tests", src.App.Directory("tests")).
		WithUser(AppUser).
		WithExec([]string{"python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"})
}

// Test runs the app's unit tests and returns pytest's output. A failing test is an error that
// carries pytest's output, so the user sees which test failed and why.
func Test(ctx context.Context, c *dagger.Client, src Source) (string, error) {
	out, err := TestContainer(c, src).Stdout(ctx)
	var execErr *dagger.ExecError
	if errors.As(err, &execErr) {
		output := strings.TrimSpace(execErr.Stdout + "\n" + execErr.Stderr)
		return output, fmt.Errorf("app tests failed (exit %d):\n%s", execErr.ExitCode, output)
	}
	if err != nil {
		return "", fmt.Errorf("app tests: %w", err)
	}
	return out, nil
}
