package main

import (
	"context"
	"strings"

	"github.com/deploydrill/deploydrill/ci/environment"
	"github.com/deploydrill/deploydrill/ci/targets/local"
)

// targetKind is one entry of the target table: everything else about a drill is the same stage
// table for every target.
type targetKind struct {
	name string
	// open checks the target's own input and returns its environment; nothing is created yet.
	open func(ctx context.Context, r *drillRun) (environment.Environment, error)
}

var targets = []targetKind{
	{name: "local", open: openLocal}, // Dagger only: the default, needs nothing else
	{name: "aws", open: openAWS},     // ECR + a throwaway EC2 host
}

func findTarget(name string) (targetKind, bool) {
	for _, t := range targets {
		if t.name == name {
			return t, true
		}
	}
	return targetKind{}, false
}

func targetNames() string {
	var names []string
	for _, t := range targets {
		names = append(names, t.name)
	}
	return strings.Join(names, " or ")
}

func openLocal(_ context.Context, r *drillRun) (environment.Environment, error) {
	store, err := r.build.store()
	if err != nil {
		return nil, err
	}
	env, err := local.New(local.Config{Images: store, Listen: r.opts.listen, TempDir: r.build.cacheDir, LogOut: r.job.engineLog})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return env, nil
}

func openAWS(ctx context.Context, r *drillRun) (environment.Environment, error) {
	env, err := r.aws.environment(ctx, r.job.version, r.log)
	if err != nil {
		return nil, err // not a typed nil: teardown must see that nothing was opened
	}
	return env, nil
}
