package ecr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// DefaultKeepVerified is how many verified images retention keeps besides V and K.
const DefaultKeepVerified = 5

// Retention says what survives a drill.
type Retention struct {
	Keep         []string // tags that must survive whatever else happens: the drill's V and K
	KeepVerified int      // the N most recently pushed verified images; 0 means DefaultKeepVerified, <0 none
}

// Retained reports what retention did, by digest.
type Retained struct {
	Kept, Deleted []string
}

// Retain deletes every tagged image that is neither kept by tag nor among the newest verified
// ones. It deletes by digest, so all of an image's tags go together. Untagged manifests are
// left to the lifecycle policy: they may be the per-platform children of a kept index.
// Per-image failures from BatchDeleteImage (which answers 200 regardless) are errors.
func (r *Repository) Retain(ctx context.Context, p Retention) (Retained, error) {
	n := p.KeepVerified
	if n == 0 {
		n = DefaultKeepVerified
	}
	imgs, err := r.images(ctx)
	if err != nil {
		return Retained{}, fmt.Errorf("retention: %w", err)
	}
	keep := map[string]bool{}
	var verified []image
	for _, img := range imgs {
		for _, t := range img.tags {
			if slices.Contains(p.Keep, t) {
				keep[img.digest] = true
			}
		}
		if img.anyVerified() {
			verified = append(verified, img)
		}
	}
	slices.SortFunc(verified, func(a, b image) int { return b.pushed.Compare(a.pushed) })
	for _, img := range verified[:min(max(n, 0), len(verified))] {
		keep[img.digest] = true
	}
	var res Retained
	var doomed []types.ImageIdentifier
	for _, img := range imgs {
		if keep[img.digest] {
			res.Kept = append(res.Kept, img.digest)
		} else {
			doomed = append(doomed, types.ImageIdentifier{ImageDigest: aws.String(img.digest)})
		}
	}
	var errs []error
	for batch := range slices.Chunk(doomed, 100) {
		out, err := r.api.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(r.name), ImageIds: batch})
		if err != nil {
			errs = append(errs, fmt.Errorf("retention: delete %d images from %s: %w", len(batch), r.name, err))
			continue
		}
		for _, id := range out.ImageIds {
			res.Deleted = append(res.Deleted, aws.ToString(id.ImageDigest))
		}
		for _, f := range out.Failures {
			errs = append(errs, fmt.Errorf("retention: delete image %s from %s: %s: %s",
				aws.ToString(f.ImageId.ImageDigest), r.name, f.FailureCode, aws.ToString(f.FailureReason)))
		}
	}
	slices.Sort(res.Deleted)
	res.Deleted = slices.Compact(res.Deleted)
	return res, errors.Join(errs...)
}

// String summarises a retention run for logs.
func (r Retained) String() string {
	return fmt.Sprintf("kept %d, deleted %d [%s]", len(r.Kept), len(r.Deleted), strings.Join(short(r.Deleted), " "))
}

func short(digests []string) []string {
	out := make([]string, len(digests))
	for i, d := range digests {
		out[i] = strings.TrimPrefix(d, "sha256:")[:min(12, len(strings.TrimPrefix(d, "sha256:")))]
	}
	return out
}
