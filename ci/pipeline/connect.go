package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"

	"dagger.io/dagger"
)

// sessionEnv serialises changes to the process environment that Connect makes.
var sessionEnv sync.Mutex

// Connect opens a client on the session `dagger run` provides, or on a new session of the
// engine the environment names. logOut receives the engine's progress (nil: discard).
func Connect(ctx context.Context, logOut io.Writer) (*dagger.Client, error) {
	sessionEnv.Lock()
	defer sessionEnv.Unlock()
	return connectLocked(ctx, logOut)
}

// ConnectPrivate opens a client on a session of its own, even under `dagger run`: closing it
// really stops every container and tunnel it started (a shared session's Close does nothing).
func ConnectPrivate(ctx context.Context, logOut io.Writer) (*dagger.Client, error) {
	sessionEnv.Lock()
	defer sessionEnv.Unlock()
	for _, name := range []string{"DAGGER_SESSION_PORT", "DAGGER_SESSION_TOKEN"} {
		if value, ok := os.LookupEnv(name); ok {
			os.Unsetenv(name)
			defer os.Setenv(name, value)
		}
	}
	return connectLocked(ctx, logOut)
}

func connectLocked(ctx context.Context, logOut io.Writer) (*dagger.Client, error) {
	// v0.18.10's SDK never searches PATH for the CLI: without this variable it tries to download
	// one, which fails offline and surprises everywhere else.
	if os.Getenv("_EXPERIMENTAL_DAGGER_CLI_BIN") == "" && os.Getenv("DAGGER_SESSION_PORT") == "" {
		bin, err := exec.LookPath("dagger")
		if err != nil {
			return nil, fmt.Errorf("connect to dagger: no dagger CLI on PATH and _EXPERIMENTAL_DAGGER_CLI_BIN unset (see README: hack/engine.sh start, or install the dagger CLI)")
		}
		os.Setenv("_EXPERIMENTAL_DAGGER_CLI_BIN", bin)
	}
	if logOut == nil {
		logOut = io.Discard
	}
	c, err := dagger.Connect(ctx, dagger.WithLogOutput(logOut))
	if err != nil {
		return nil, fmt.Errorf("connect to dagger: %w", err)
	}
	return c, nil
}
