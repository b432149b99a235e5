package ecr

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// VerifiedPrefix marks a digest that passed a drill's health check: verified-<tag> is a second
// immutable tag on the same digest, so a verified mark never moves a tag.
const VerifiedPrefix = "verified-"

// Record is one tag in the inventory; field for field the drill's Record.
type Record struct {
	Tag      string
	Digest   string
	PushedAt time.Time
	Verified bool // the digest also carries verified-<Tag>
}

// Image is a deployable image; field for field the drill's Image.
type Image struct {
	Ref     string // digest-pinned: <uri>@sha256:...
	Tag     string
	Version string // what the app reports as its version: the tag (the git SHA) itself
	Digest  string
}

// manifestTypes are the manifests MarkVerified copies under the new tag.
var manifestTypes = []string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}

// image is one digest with all its tags.
type image struct {
	digest string
	tags   []string
	pushed time.Time
}

func (img image) verified(tag string) bool { return slices.Contains(img.tags, VerifiedPrefix+tag) }

// anyVerified reports whether one of the image's own tags is marked verified.
func (img image) anyVerified() bool {
	for _, t := range img.tags {
		if !strings.HasPrefix(t, VerifiedPrefix) && img.verified(t) {
			return true
		}
	}
	return false
}

// images lists every tagged image, following pagination.
func (r *Repository) images(ctx context.Context) ([]image, error) {
	var out []image
	p := ecr.NewDescribeImagesPaginator(r.api, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(r.name), Filter: &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list images in %s: %w", r.name, err)
		}
		for _, d := range page.ImageDetails {
			out = append(out, image{digest: aws.ToString(d.ImageDigest), tags: d.ImageTags, pushed: aws.ToTime(d.ImagePushedAt)})
		}
	}
	return out, nil
}

// List returns one record per tag (verified marks excluded), newest push first.
func (r *Repository) List(ctx context.Context) ([]Record, error) {
	imgs, err := r.images(ctx)
	if err != nil {
		return nil, err
	}
	var recs []Record
	for _, img := range imgs {
		for _, t := range img.tags {
			if !strings.HasPrefix(t, VerifiedPrefix) {
				recs = append(recs, Record{Tag: t, Digest: img.digest, PushedAt: img.pushed, Verified: img.verified(t)})
			}
		}
	}
	slices.SortFunc(recs, func(a, b Record) int {
		return cmp.Or(b.PushedAt.Compare(a.PushedAt), strings.Compare(a.Tag, b.Tag))
	})
	return recs, nil
}

// MarkVerified tags the digest of tag with verified-<tag> by putting its existing manifest
// under the new tag, which immutable repositories allow. Marking twice is a no-op.
func (r *Repository) MarkVerified(ctx context.Context, tag string) error {
	if strings.HasPrefix(tag, VerifiedPrefix) {
		return fmt.Errorf("mark %s verified: it is itself a verified mark", tag)
	}
	got, err := r.api.BatchGetImage(ctx, &ecr.BatchGetImageInput{
		RepositoryName: aws.String(r.name), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}}, AcceptedMediaTypes: manifestTypes,
	})
	if err != nil {
		return fmt.Errorf("mark %s verified: read manifest: %w", tag, err)
	}
	if len(got.Failures) > 0 {
		f := got.Failures[0]
		return fmt.Errorf("mark %s verified: read manifest: %s: %s", tag, f.FailureCode, aws.ToString(f.FailureReason))
	}
	if len(got.Images) == 0 {
		return fmt.Errorf("mark %s verified: no such image in %s", tag, r.name)
	}
	img := got.Images[0]
	_, err = r.api.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName: aws.String(r.name), ImageTag: aws.String(VerifiedPrefix + tag),
		ImageManifest: img.ImageManifest, ImageManifestMediaType: img.ImageManifestMediaType, ImageDigest: img.ImageId.ImageDigest,
	})
	switch {
	case isCode(err, "ImageAlreadyExistsException"):
		return nil
	case isCode(err, "ImageTagAlreadyExistsException"):
		return fmt.Errorf("mark %s verified: %s%s already marks another digest: %w", tag, VerifiedPrefix, tag, err)
	case err != nil:
		return fmt.Errorf("mark %s verified: %w", tag, err)
	}
	return nil
}

// Resolve turns a tag into a digest-pinned image.
func (r *Repository) Resolve(ctx context.Context, tag string) (Image, error) {
	out, err := r.api.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(r.name), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	if isCode(err, "ImageNotFoundException") {
		return Image{}, fmt.Errorf("resolve %s: no such tag in repository %s: %w", tag, r.name, err)
	}
	if err != nil {
		return Image{}, fmt.Errorf("resolve %s: %w", tag, err)
	}
	if len(out.ImageDetails) == 0 {
		return Image{}, fmt.Errorf("resolve %s: no such tag in repository %s", tag, r.name)
	}
	uri, err := r.URI(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("resolve %s: %w", tag, err)
	}
	digest := aws.ToString(out.ImageDetails[0].ImageDigest)
	return Image{Ref: uri + "@" + digest, Tag: tag, Version: tag, Digest: digest}, nil
}
