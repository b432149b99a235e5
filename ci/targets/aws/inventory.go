package aws

import (
	"context"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/infra/ecr"
)

// inventory adapts the ECR repository to the drill's Inventory; infra never imports ci.
type inventory struct{ repo *ecr.Repository }

var _ drill.Inventory = inventory{}

// NewInventory is the ECR repository's inventory on its own, for listing tags without a run:
// List of a repository that does not exist is empty; errors name the repository and region
// and say AWS's error code in words.
func NewInventory(cfg sdkaws.Config, repository string) drill.Inventory {
	return inventory{ecr.NewFromConfig(cfg, repository)}
}

func (i inventory) List(ctx context.Context) ([]drill.Record, error) {
	records, err := i.repo.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]drill.Record, len(records))
	for n, r := range records {
		out[n] = drill.Record(r)
	}
	return out, nil
}

func (i inventory) MarkVerified(ctx context.Context, tag string) error {
	return i.repo.MarkVerified(ctx, tag)
}

func (i inventory) Resolve(ctx context.Context, tag string) (drill.Image, error) {
	img, err := i.repo.Resolve(ctx, tag)
	return drill.Image(img), err
}
