package awsdouble_test

import (
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

func manifest(n int) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:%064d"}}`, n)
}

func TestECRFollowsImmutableTagRules(t *testing.T) {
	d := start(t, awsdouble.Options{PageSize: 2})
	c := ecr.NewFromConfig(d.Config())
	ctx := t.Context()
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app"), ImageTagMutability: types.ImageTagMutabilityImmutable,
		Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); errorCode(err) != "RepositoryAlreadyExistsException" {
		t.Fatalf("second create: %v", err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		if _, err := d.PushImage("app", fmt.Sprint("v", i), manifest(i), base.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.PushImage("app", "v0", manifest(9), base); errorCode(err) != "ImageTagAlreadyExistsException" {
		t.Fatalf("re-push of an immutable tag: got %v", err)
	}
	_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageTag: aws.String("v0"), ImageManifest: aws.String(string(manifest(0)))})
	if errorCode(err) != "ImageAlreadyExistsException" {
		t.Fatalf("same tag, same manifest: got %v", err)
	}
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("app"), ImageTag: aws.String("verified-v0"), ImageManifest: aws.String(string(manifest(0)))}); err != nil {
		t.Fatalf("a new tag on an existing digest must be allowed: %v", err)
	}

	var details []types.ImageDetail
	p := ecr.NewDescribeImagesPaginator(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("app")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		details = append(details, page.ImageDetails...)
	}
	if len(details) != 5 {
		t.Fatalf("paginated %d images, want 5", len(details))
	}
	for _, dt := range details {
		if dt.ImagePushedAt == nil || dt.ImagePushedAt.Before(base) || dt.ImageDigest == nil {
			t.Errorf("detail %+v", dt)
		}
	}

	repo, _ := d.Repository("app")
	if err := d.FailImageDelete("app", repo.Images[1].Digest, "ImageReferencedByManifestList"); err != nil {
		t.Fatal(err)
	}
	del, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("app"), ImageIds: []types.ImageIdentifier{
		{ImageDigest: aws.String(repo.Images[1].Digest)}, {ImageTag: aws.String("v2")}, {ImageTag: aws.String("nope")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.ImageIds) != 1 || len(del.Failures) != 2 || del.Failures[0].FailureCode != "ImageReferencedByManifestList" || del.Failures[1].FailureCode != "ImageNotFound" {
		t.Errorf("batch delete = %+v", del)
	}
	if _, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("app")}); errorCode(err) != "RepositoryNotEmptyException" {
		t.Errorf("delete non-empty without force: %v", err)
	}
	if _, err := c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("app"), Force: true}); err != nil {
		t.Errorf("forced delete: %v", err)
	}
}

func TestECRAuthorizationTokenCarriesThePassword(t *testing.T) {
	d := start(t, awsdouble.Options{RegistryEndpoint: "http://127.0.0.1:5000", RegistryPassword: "s3cret"})
	out, err := ecr.NewFromConfig(d.Config()).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	a := out.AuthorizationData[0]
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(a.AuthorizationToken))
	if string(raw) != "AWS:s3cret" || aws.ToString(a.ProxyEndpoint) != "http://127.0.0.1:5000" || time.Until(*a.ExpiresAt) < 11*time.Hour {
		t.Errorf("token %q endpoint %q expires %v", raw, aws.ToString(a.ProxyEndpoint), a.ExpiresAt)
	}
}

func TestSSMServesUbuntusPublicParameter(t *testing.T) {
	d := start(t, awsdouble.Options{})
	c := ssm.NewFromConfig(d.Config())
	out, err := c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(awsdouble.UbuntuAMIParameter)})
	if err != nil || aws.ToString(out.Parameter.Value) != awsdouble.UbuntuAMI {
		t.Fatalf("get parameter: %v %+v", err, out)
	}
	d.SetParameter(awsdouble.UbuntuAMIParameter, "")
	if _, err := c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(awsdouble.UbuntuAMIParameter)}); errorCode(err) != "ParameterNotFound" {
		t.Errorf("missing parameter: %v", err)
	}
}
