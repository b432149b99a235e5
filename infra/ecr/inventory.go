package ecr

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/deploydrill/deploydrill/internal/retention"
)

// Record is one tag in the inventory; field for field the drill's Record.
type Record struct {
	Tag      string
	Digest   string
	PushedAt time.Time
	Verified bool // the digest also carries retention.VerifiedTag(Tag)
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

// images lists every tagged image, following pagination.
func (r *Repository) images(ctx context.Context) ([]retention.Image, error) {
	var out []retention.Image
	p := ecr.NewDescribeImagesPaginator(r.api, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(r.name), Filter: &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, r.fail("list images in", err)
		}
		for _, d := range page.ImageDetails {
			out = append(out, retention.Image{Digest: aws.ToString(d.ImageDigest), Tags: d.ImageTags, PushedAt: aws.ToTime(d.ImagePushedAt)})
		}
	}
	return out, nil
}

// List returns one record per tag (verified marks excluded), newest push first. A repository
// that does not exist yet holds no images: the list is empty.
func (r *Repository) List(ctx context.Context) ([]Record, error) {
	imgs, err := r.images(ctx)
	if errors.Is(err, ErrRepositoryNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []Record
	for _, img := range imgs {
		for _, t := range img.Tags {
			if !retention.IsMark(t) {
				recs = append(recs, Record{Tag: t, Digest: img.Digest, PushedAt: img.PushedAt, Verified: slices.Contains(img.Tags, retention.VerifiedTag(t))})
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
	if retention.IsMark(tag) {
		return fmt.Errorf("mark %s verified: it is itself a verified mark", tag)
	}
	got, err := r.api.BatchGetImage(ctx, &ecr.BatchGetImageInput{
		RepositoryName: aws.String(r.name), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}}, AcceptedMediaTypes: manifestTypes,
	})
	if err != nil {
		return fmt.Errorf("mark %s verified: %w", tag, r.fail("read its manifest in", err))
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
		RepositoryName: aws.String(r.name), ImageTag: aws.String(retention.VerifiedTag(tag)),
		ImageManifest: img.ImageManifest, ImageManifestMediaType: img.ImageManifestMediaType, ImageDigest: img.ImageId.ImageDigest,
	})
	switch {
	case isCode(err, "ImageAlreadyExistsException"):
		return nil
	case isCode(err, "ImageTagAlreadyExistsException"):
		return fmt.Errorf("mark %s verified: %s already marks another digest: %w", tag, retention.VerifiedTag(tag), err)
	case err != nil:
		return fmt.Errorf("mark %s verified: %w", tag, r.fail("put the mark in", err))
	}
	return nil
}

// Resolve turns a tag into a digest-pinned image.
func (r *Repository) Resolve(ctx context.Context, tag string) (Image, error) {
	out, err := r.api.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(r.name), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	switch {
	case isCode(err, "ImageNotFoundException"):
		return Image{}, fmt.Errorf("resolve %s: no such tag in repository %s: %w", tag, r.name, err)
	case err != nil:
		return Image{}, r.fail("resolve "+tag+" in", err)
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
