// Package ecr keeps the drill's image repository: created immutable and scanned, its registry
// credentials, the inventory of earlier drills (tags, digests, push times, verified marks),
// verified marks as second immutable tags, and retention after a drill (internal/retention's
// rule, applied by digest).
package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/deploydrill/deploydrill/infra/runtag"
)

// api is the part of *ecr.Client this package uses.
type api interface {
	CreateRepository(ctx context.Context, in *ecr.CreateRepositoryInput, optFns ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
	DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, optFns ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	DeleteRepository(ctx context.Context, in *ecr.DeleteRepositoryInput, optFns ...func(*ecr.Options)) (*ecr.DeleteRepositoryOutput, error)
	ListTagsForResource(ctx context.Context, in *ecr.ListTagsForResourceInput, optFns ...func(*ecr.Options)) (*ecr.ListTagsForResourceOutput, error)
	PutLifecyclePolicy(ctx context.Context, in *ecr.PutLifecyclePolicyInput, optFns ...func(*ecr.Options)) (*ecr.PutLifecyclePolicyOutput, error)
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
	DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, optFns ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	BatchGetImage(ctx context.Context, in *ecr.BatchGetImageInput, optFns ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error)
	PutImage(ctx context.Context, in *ecr.PutImageInput, optFns ...func(*ecr.Options)) (*ecr.PutImageOutput, error)
	BatchDeleteImage(ctx context.Context, in *ecr.BatchDeleteImageInput, optFns ...func(*ecr.Options)) (*ecr.BatchDeleteImageOutput, error)
}

var _ api = (*ecr.Client)(nil)

// DefaultRepository is the repository name unless --repository says otherwise; the IAM policy
// in infra/iam is written for it.
const DefaultRepository = "deploydrill"

// Repository is one ECR repository.
type Repository struct {
	api    api
	name   string
	region string // for errors
	uri    string // learnt from the first describe or create
}

// New wraps an ECR client; *ecr.Client fits. region only names the place in errors.
func New(c api, name, region string) *Repository {
	return &Repository{api: c, name: name, region: region}
}

// NewFromConfig builds the client from an SDK configuration.
func NewFromConfig(cfg aws.Config, name string) *Repository {
	return New(ecr.NewFromConfig(cfg), name, cfg.Region)
}

// Name is the repository's name.
func (r *Repository) Name() string { return r.name }

// Ensured describes the repository EnsureRepository found or made.
type Ensured struct {
	Name, URI, ARN string
	Created        bool // this run created it
	Ephemeral      bool // created for this run only: teardown deletes it
}

// EnsureRepository uses the repository as it is when it exists. Otherwise it creates it with
// immutable tags, scan on push and the run's tags, and sets a lifecycle policy as a backstop.
// ephemeral marks a created repository for deletion at teardown; an existing one never is.
func (r *Repository) EnsureRepository(ctx context.Context, run runtag.Run, ephemeral bool) (Ensured, error) {
	if repo, err := r.describe(ctx); err == nil {
		return Ensured{Name: r.name, URI: aws.ToString(repo.RepositoryUri), ARN: aws.ToString(repo.RepositoryArn)}, nil
	} else if !isCode(err, "RepositoryNotFoundException") {
		return Ensured{}, err
	}
	tags := []types.Tag{{Key: aws.String(runtag.KeyEphemeral), Value: aws.String(fmt.Sprint(ephemeral))}}
	for _, t := range run.Tags() {
		tags = append(tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	out, err := r.api.CreateRepository(ctx, &ecr.CreateRepositoryInput{
		RepositoryName:             aws.String(r.name),
		ImageTagMutability:         types.ImageTagMutabilityImmutable,
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
		Tags:                       tags,
	})
	if isCode(err, "RepositoryAlreadyExistsException") { // another run won the race
		return r.EnsureRepository(ctx, run, false)
	}
	if err != nil {
		return Ensured{}, r.fail("create", err)
	}
	r.uri = aws.ToString(out.Repository.RepositoryUri)
	e := Ensured{Name: r.name, URI: r.uri, ARN: aws.ToString(out.Repository.RepositoryArn), Created: true, Ephemeral: ephemeral}
	if _, err := r.api.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{
		RepositoryName: aws.String(r.name), LifecyclePolicyText: aws.String(LifecyclePolicy),
	}); err != nil {
		return e, r.fail("set the lifecycle policy of", err)
	}
	return e, nil
}

// LifecyclePolicy is the backstop ECR applies on its own (within about a day): retention after
// each drill does the real work.
const LifecyclePolicy = `{"rules":[` +
	`{"rulePriority":1,"description":"deploydrill backstop: untagged images after 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}},` +
	`{"rulePriority":2,"description":"deploydrill backstop: at most 200 images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":200},"action":{"type":"expire"}}]}`

func (r *Repository) describe(ctx context.Context) (types.Repository, error) {
	out, err := r.api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{r.name}})
	if err != nil {
		return types.Repository{}, r.fail("describe", err)
	}
	if len(out.Repositories) == 0 {
		return types.Repository{}, fmt.Errorf("describe repository %s: empty answer", r.name)
	}
	r.uri = aws.ToString(out.Repositories[0].RepositoryUri)
	return out.Repositories[0], nil
}

// URI is registry-host/name, the prefix of every image reference.
func (r *Repository) URI(ctx context.Context) (string, error) {
	if r.uri != "" {
		return r.uri, nil
	}
	_, err := r.describe(ctx)
	return r.uri, err
}

// Auth is what a registry client needs. Password is a secret (see Secret).
type Auth struct {
	User      string
	Password  Secret
	Host      string // registry host, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com
	Endpoint  string // the same with its scheme, as GetAuthorizationToken returns it
	ExpiresAt time.Time
}

// RegistryAuth fetches a registry credential (valid about 12 hours).
func (r *Repository) RegistryAuth(ctx context.Context) (Auth, error) {
	out, err := r.api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return Auth{}, r.fail("get a registry token for", err)
	}
	if len(out.AuthorizationData) == 0 {
		return Auth{}, errors.New("get registry token: no authorization data")
	}
	a := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(a.AuthorizationToken))
	if err != nil {
		return Auth{}, errors.New("get registry token: token is not base64") // never echo the token
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || password == "" {
		return Auth{}, errors.New("get registry token: token is not user:password")
	}
	endpoint := aws.ToString(a.ProxyEndpoint)
	host := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	return Auth{User: user, Password: NewSecret(password), Host: host, Endpoint: endpoint, ExpiresAt: aws.ToTime(a.ExpiresAt)}, nil
}

// DeleteRepository deletes the repository and its images; a missing repository is success.
func (r *Repository) DeleteRepository(ctx context.Context) error {
	_, err := r.api.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String(r.name), Force: true})
	if err != nil && !isCode(err, "RepositoryNotFoundException") {
		return r.fail("delete", err)
	}
	return nil
}

// Tags returns the repository's tags; exists is false when there is no such repository.
func (r *Repository) Tags(ctx context.Context) (tags map[string]string, created time.Time, exists bool, err error) {
	repo, err := r.describe(ctx)
	if isCode(err, "RepositoryNotFoundException") {
		return nil, time.Time{}, false, nil
	}
	if err != nil {
		return nil, time.Time{}, false, err
	}
	out, err := r.api.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: repo.RepositoryArn})
	if err != nil {
		return nil, time.Time{}, true, r.fail("list the tags of", err)
	}
	tags = map[string]string{}
	for _, t := range out.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, aws.ToTime(repo.CreatedAt), true, nil
}
