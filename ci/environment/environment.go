// Package environment is what the drill's lifecycle needs from a target beyond the drill
// itself: where V is published, how the target is provisioned and prepared, and a teardown that
// also applies retention and says what may be left. The CLI runs every target through one stage
// table against this interface; `local` (Dagger) and `aws` (ECR + EC2) implement it.
package environment

import (
	"context"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/internal/retention"
)

// Environment is one target for one run.
type Environment interface {
	drill.Target   // Name, Deploy, Stop, Endpoint
	drill.Preparer // Prepare K ahead of the rollback (load it, pre-pull it)

	// Inventory lists rollback candidates and records verified versions.
	Inventory() drill.Inventory
	// Registry makes the publish destination ready (the ECR repository and a credential; the
	// local store) and returns it. Called once, before anything else is created.
	Registry(ctx context.Context) (Destination, error)
	// Provision makes the target ready to deploy: boots the host and waits for Docker (aws);
	// nothing (local). It runs while the pipeline builds, tests and publishes.
	Provision(ctx context.Context) error
	// Teardown releases everything this run created, then applies retention to the inventory.
	// It is idempotent and runs with a fresh context whatever happened before, even when
	// Registry or Provision failed or never ran. The report always says what may be left.
	Teardown(ctx context.Context, keep retention.Policy) (Teardown, error)
}

// Destination is where the publish stage puts V.
type Destination struct {
	// Store is set for the local image store: the image is exported into it.
	Store Store
	// Repository (host[:port]/name) is set for a registry: the image is pushed there.
	Repository string
	User       string
	Password   Secret // nil for an anonymous registry
	// Immutable: the registry refuses to move a tag, so an existing tag is reused, not pushed.
	Immutable bool
}

// Store is the local image store as the publish stage needs it.
type Store interface {
	// AddArchive stores the OCI archive at path under tag.
	AddArchive(path, tag string) (drill.Image, error)
	Dir() string
}

// Secret is a credential that only shows itself when asked (into a Dagger secret, never a log).
type Secret interface{ Reveal() string }

// Teardown is what a teardown did; the report shows it (drill.Result.RecordTeardown).
type Teardown = drill.Teardown

// Step is one teardown step's outcome.
type Step = drill.Step
