package aws

import (
	"context"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/infra/ecr"
)

// inventory adapts the ECR repository to the drill's Inventory; infra never imports ci.
type inventory struct{ repo *ecr.Repository }

var _ drill.Inventory = inventory{}

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
