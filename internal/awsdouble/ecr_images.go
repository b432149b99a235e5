package awsdouble

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

type image struct {
	digest, mediaType string
	manifest          []byte
	pushed            time.Time
	tags              []string
}

type imageID struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

type imageFailure struct {
	ImageID       imageID `json:"imageId"`
	FailureCode   string  `json:"failureCode"`
	FailureReason string  `json:"failureReason"`
}

func (d *Double) repoFor(name string) (*repository, *apiError) {
	if r := d.repos[name]; r != nil {
		return r, nil
	}
	return nil, d.repoNotFound(name)
}

// lookup finds the image an identifier names; a digest and a tag must agree.
func (r *repository) lookup(id imageID) *image {
	digest := id.ImageDigest
	if id.ImageTag != "" {
		byTag, ok := r.byTag[id.ImageTag]
		if !ok || (digest != "" && digest != byTag) {
			return nil
		}
		digest = byTag
	}
	return r.images[digest]
}

func (d *Double) ecrDescribeImages(body []byte) (any, *apiError) {
	var req struct {
		RepositoryName string
		ImageIds       []imageID
		NextToken      string
		MaxResults     int
		Filter         struct{ TagStatus string }
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, e := d.repoFor(req.RepositoryName)
	if e != nil {
		return nil, e
	}
	var picked []*image
	for _, id := range req.ImageIds {
		img := r.lookup(id)
		if img == nil {
			return nil, errorf("ImageNotFoundException", "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'", id.ImageDigest, id.ImageTag, r.name, d.opts.AccountID)
		}
		picked = append(picked, img)
	}
	if len(req.ImageIds) == 0 {
		for _, img := range sortedValues(r.images, func(i *image) string { return i.digest }) {
			tagged := len(img.tags) > 0
			if (req.Filter.TagStatus == "TAGGED" && !tagged) || (req.Filter.TagStatus == "UNTAGGED" && tagged) {
				continue
			}
			picked = append(picked, img)
		}
	}
	var details []map[string]any
	for _, img := range picked {
		dt := map[string]any{
			"registryId": d.opts.AccountID, "repositoryName": r.name, "imageDigest": img.digest,
			"imageSizeInBytes": len(img.manifest) * 1000, "imagePushedAt": epoch(img.pushed),
			"imageManifestMediaType": img.mediaType,
		}
		if len(img.tags) > 0 {
			dt["imageTags"] = img.tags
		}
		details = append(details, dt)
	}
	page, next := paginate(details, req.NextToken, req.MaxResults, d.opts.PageSize)
	out := map[string]any{"imageDetails": page}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func (d *Double) ecrBatchGetImage(body []byte) (any, *apiError) {
	var req struct {
		RepositoryName     string
		ImageIds           []imageID
		AcceptedMediaTypes []string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, e := d.repoFor(req.RepositoryName)
	if e != nil {
		return nil, e
	}
	images, failures := []map[string]any{}, []imageFailure{}
	for _, id := range req.ImageIds {
		img := r.lookup(id)
		switch {
		case img == nil:
			failures = append(failures, imageFailure{id, "ImageNotFound", "Requested image not found"})
		case len(req.AcceptedMediaTypes) > 0 && !slices.Contains(req.AcceptedMediaTypes, img.mediaType):
			failures = append(failures, imageFailure{id, "UnsupportedImageType", "Image media type " + img.mediaType + " is not accepted"})
		default:
			images = append(images, map[string]any{
				"registryId": d.opts.AccountID, "repositoryName": r.name,
				"imageId":       imageID{ImageDigest: img.digest, ImageTag: id.ImageTag},
				"imageManifest": string(img.manifest), "imageManifestMediaType": img.mediaType,
			})
		}
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func (d *Double) ecrPutImage(body []byte) (any, *apiError) {
	var req struct {
		RepositoryName, ImageManifest, ImageManifestMediaType, ImageTag, ImageDigest string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, e := d.repoFor(req.RepositoryName)
	if e != nil {
		return nil, e
	}
	img, e := d.putImage(r, req.ImageTag, []byte(req.ImageManifest), req.ImageManifestMediaType, req.ImageDigest, d.opts.Now())
	if e != nil {
		return nil, e
	}
	return map[string]any{"image": map[string]any{
		"registryId": d.opts.AccountID, "repositoryName": r.name,
		"imageId":       imageID{ImageDigest: img.digest, ImageTag: req.ImageTag},
		"imageManifest": string(img.manifest), "imageManifestMediaType": img.mediaType,
	}}, nil
}

// putImage stores a manifest under a tag with ECR's rules: the same tag and digest again is
// ImageAlreadyExistsException; an immutable tag on another digest is ImageTagAlreadyExistsException.
func (d *Double) putImage(r *repository, tag string, manifest []byte, mediaType, wantDigest string, at time.Time) (*image, *apiError) {
	sum := sha256.Sum256(manifest)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if wantDigest != "" && wantDigest != digest {
		return nil, errorf("ImageDigestDoesNotMatchException", "Provided digest %s does not match the digest of the manifest %s", wantDigest, digest)
	}
	var probe struct{ MediaType string }
	if err := json.Unmarshal(manifest, &probe); err != nil {
		return nil, errorf("InvalidParameterException", "Invalid parameter at 'imageManifest': not JSON")
	}
	if mediaType == "" {
		mediaType = probe.MediaType
	}
	if have, ok := r.byTag[tag]; ok && tag != "" {
		if have == digest {
			return nil, errorf("ImageAlreadyExistsException", "Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'", digest, tag, r.name, d.opts.AccountID)
		}
		if r.mutability == "IMMUTABLE" {
			return nil, errorf("ImageTagAlreadyExistsException", "The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", tag, r.name)
		}
		old := r.images[have]
		old.tags = slices.DeleteFunc(old.tags, func(t string) bool { return t == tag })
	}
	img := r.images[digest]
	if img == nil {
		img = &image{digest: digest, mediaType: mediaType, manifest: manifest, pushed: at}
		r.images[digest] = img
	}
	if tag != "" {
		img.tags = append(img.tags, tag)
		slices.Sort(img.tags)
		r.byTag[tag] = digest
	}
	return img, nil
}

// PushImage seeds an image as a registry push would (the registry protocol itself is served by a
// real OCI registry, not by the double). It follows PutImage's rules and returns the digest.
func (d *Double) PushImage(repo, tag string, manifest []byte, pushedAt time.Time) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, e := d.repoFor(repo)
	if e != nil {
		return "", e
	}
	img, e := d.putImage(r, tag, manifest, "", "", pushedAt)
	if e != nil {
		return "", e
	}
	return img.digest, nil
}

// FailImageDelete makes BatchDeleteImage report a per-image failure for this digest.
func (d *Double) FailImageDelete(repo, digest, code string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, e := d.repoFor(repo)
	if e != nil {
		return e
	}
	r.deleteFailures[digest] = code
	return nil
}

func (d *Double) ecrBatchDeleteImage(body []byte) (any, *apiError) {
	var req struct {
		RepositoryName string
		ImageIds       []imageID
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, e := d.repoFor(req.RepositoryName)
	if e != nil {
		return nil, e
	}
	deleted, failures := []imageID{}, []imageFailure{}
	for _, id := range req.ImageIds {
		img := r.lookup(id)
		if img == nil {
			failures = append(failures, imageFailure{id, "ImageNotFound", "Requested image not found"})
			continue
		}
		if code, ok := r.deleteFailures[img.digest]; ok {
			failures = append(failures, imageFailure{id, code, fmt.Sprintf("injected failure for %s", img.digest)})
			continue
		}
		if id.ImageTag != "" && len(img.tags) > 1 {
			img.tags = slices.DeleteFunc(img.tags, func(t string) bool { return t == id.ImageTag })
			delete(r.byTag, id.ImageTag)
		} else {
			for _, t := range img.tags {
				delete(r.byTag, t)
			}
			delete(r.images, img.digest)
		}
		deleted = append(deleted, imageID{ImageDigest: img.digest, ImageTag: id.ImageTag})
	}
	return map[string]any{"imageIds": deleted, "failures": failures}, nil
}
