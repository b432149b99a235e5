package ecr

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/deploydrill/deploydrill/internal/retention"
)

// Retain applies the retention rule (retention.Policy.Select) to every tagged image and deletes
// the images it removes, by digest, so all of an image's tags go together. Untagged manifests
// are left to the lifecycle policy: they may be the per-platform children of a kept index.
// Per-image failures from BatchDeleteImage (which answers 200 regardless) are errors; the
// other deletions still happen. A repository that does not exist has nothing to retain.
func (r *Repository) Retain(ctx context.Context, p retention.Policy) (retention.Outcome, error) {
	if err := p.Validate(); err != nil {
		return retention.Outcome{}, fmt.Errorf("retention in repository %s: %w", r.name, err)
	}
	imgs, err := r.images(ctx)
	if errors.Is(err, ErrRepositoryNotFound) {
		return retention.Outcome{}, nil
	}
	if err != nil {
		return retention.Outcome{}, fmt.Errorf("retention: %w", err)
	}
	keep, remove := p.Select(imgs)
	res := retention.Outcome{Kept: keep}
	var errs []error
	for batch := range slices.Chunk(remove, 100) {
		ids := make([]types.ImageIdentifier, len(batch))
		for i, d := range batch {
			ids[i] = types.ImageIdentifier{ImageDigest: aws.String(d)}
		}
		out, err := r.api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(r.name), ImageIds: ids})
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: %w", r.fail(fmt.Sprintf("delete %d images from", len(batch)), err)))
			continue
		}
		for _, id := range out.ImageIds {
			res.Removed = append(res.Removed, aws.ToString(id.ImageDigest))
		}
		for _, f := range out.Failures {
			errs = append(errs, fmt.Errorf("retention: delete image %s from repository %s: %s: %s",
				aws.ToString(f.ImageId.ImageDigest), r.name, f.FailureCode, aws.ToString(f.FailureReason)))
		}
	}
	slices.Sort(res.Removed)
	res.Removed = slices.Compact(res.Removed)
	return res, errors.Join(errs...)
}
