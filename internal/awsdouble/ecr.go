package awsdouble

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type repository struct {
	name, arn, mutability, lifecycle string
	created                          time.Time
	scanOnPush                       bool
	tags                             map[string]string
	images                           map[string]*image // by digest
	byTag                            map[string]string // tag -> digest
	deleteFailures                   map[string]string // digest -> failure code
}

var repoNamePattern = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

var ecrHandlers = map[string]jsonHandler{
	"CreateRepository":      (*Double).ecrCreateRepository,
	"DescribeRepositories":  (*Double).ecrDescribeRepositories,
	"DeleteRepository":      (*Double).ecrDeleteRepository,
	"ListTagsForResource":   (*Double).ecrListTags,
	"PutLifecyclePolicy":    (*Double).ecrPutLifecyclePolicy,
	"GetAuthorizationToken": (*Double).ecrGetAuthorizationToken,
	"DescribeImages":        (*Double).ecrDescribeImages,
	"BatchGetImage":         (*Double).ecrBatchGetImage,
	"PutImage":              (*Double).ecrPutImage,
	"BatchDeleteImage":      (*Double).ecrBatchDeleteImage,
}

type jsonRepository struct {
	ARN        string          `json:"repositoryArn"`
	RegistryID string          `json:"registryId"`
	Name       string          `json:"repositoryName"`
	URI        string          `json:"repositoryUri"`
	CreatedAt  epoch           `json:"createdAt"`
	Mutability string          `json:"imageTagMutability"`
	Scanning   map[string]bool `json:"imageScanningConfiguration"`
	Encryption map[string]any  `json:"encryptionConfiguration"`
}

func (d *Double) registryHost() string {
	u, err := url.Parse(d.opts.RegistryEndpoint)
	if err != nil || u.Host == "" {
		return d.opts.RegistryEndpoint
	}
	return u.Host
}

func (d *Double) jsonRepository(r *repository) jsonRepository {
	return jsonRepository{ARN: r.arn, RegistryID: d.opts.AccountID, Name: r.name, URI: d.registryHost() + "/" + r.name,
		CreatedAt: epoch(r.created), Mutability: r.mutability, Scanning: map[string]bool{"scanOnPush": r.scanOnPush},
		Encryption: map[string]any{"encryptionType": "AES256"}}
}

func (d *Double) repoNotFound(name string) *apiError {
	return errorf("RepositoryNotFoundException", "The repository with name '%s' does not exist in the registry with id '%s'", name, d.opts.AccountID)
}

func (d *Double) ecrCreateRepository(body []byte) (any, *apiError) {
	var req struct {
		RepositoryName             string
		Tags                       []jsonTag
		ImageTagMutability         string
		ImageScanningConfiguration struct{ ScanOnPush bool }
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tags := map[string]string{}
	for _, t := range req.Tags {
		tags[t.Key] = t.Value
	}
	r, e := d.createRepository(req.RepositoryName, req.ImageTagMutability, req.ImageScanningConfiguration.ScanOnPush, tags)
	if e != nil {
		return nil, e
	}
	return map[string]jsonRepository{"repository": d.jsonRepository(r)}, nil
}

func (d *Double) createRepository(name, mutability string, scan bool, tags map[string]string) (*repository, *apiError) {
	if len(name) < 2 || len(name) > 256 || !repoNamePattern.MatchString(name) {
		return nil, errorf("InvalidParameterException", "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '%s''", repoNamePattern)
	}
	if _, ok := d.repos[name]; ok {
		return nil, errorf("RepositoryAlreadyExistsException", "The repository with name '%s' already exists in the registry with id '%s'", name, d.opts.AccountID)
	}
	switch mutability {
	case "":
		mutability = "MUTABLE"
	case "MUTABLE", "IMMUTABLE":
	default:
		return nil, errorf("InvalidParameterException", "Invalid parameter at 'imageTagMutability'")
	}
	r := &repository{name: name, arn: "arn:aws:ecr:" + d.opts.Region + ":" + d.opts.AccountID + ":repository/" + name,
		mutability: mutability, scanOnPush: scan, created: d.opts.Now(), tags: tags,
		images: map[string]*image{}, byTag: map[string]string{}, deleteFailures: map[string]string{}}
	d.repos[name] = r
	return r, nil
}

// CreateRepository seeds a repository as if someone created it outside the tool.
func (d *Double) CreateRepository(name string, immutable bool, tags map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	mut := "MUTABLE"
	if immutable {
		mut = "IMMUTABLE"
	}
	if _, e := d.createRepository(name, mut, false, orEmpty(tags)); e != nil {
		return e
	}
	return nil
}

func (d *Double) ecrDescribeRepositories(body []byte) (any, *apiError) {
	var req struct {
		RepositoryNames []string
		NextToken       string
		MaxResults      int
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var list []jsonRepository
	for _, n := range req.RepositoryNames {
		r := d.repos[n]
		if r == nil {
			return nil, d.repoNotFound(n)
		}
		list = append(list, d.jsonRepository(r))
	}
	if len(req.RepositoryNames) == 0 {
		for _, r := range sortedValues(d.repos, func(r *repository) string { return r.name }) {
			list = append(list, d.jsonRepository(r))
		}
	}
	page, next := paginate(list, req.NextToken, req.MaxResults, d.opts.PageSize)
	out := map[string]any{"repositories": page}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

// paginate slices a list by a numeric next token; an empty token in the answer ends the list.
func paginate[T any](list []T, token string, max, pageSize int) ([]T, string) {
	start, _ := strconv.Atoi(token)
	start = min(start, len(list))
	size := pageSize
	if max > 0 {
		size = min(max, pageSize)
	}
	end := min(start+size, len(list))
	next := ""
	if end < len(list) {
		next = strconv.Itoa(end)
	}
	return list[start:end], next
}

func (d *Double) ecrDeleteRepository(body []byte) (any, *apiError) {
	var req struct {
		RepositoryName string
		Force          bool
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.repos[req.RepositoryName]
	if r == nil {
		return nil, d.repoNotFound(req.RepositoryName)
	}
	if len(r.images) > 0 && !req.Force {
		return nil, errorf("RepositoryNotEmptyException", "The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", r.name, d.opts.AccountID)
	}
	delete(d.repos, r.name)
	return map[string]jsonRepository{"repository": d.jsonRepository(r)}, nil
}

func (d *Double) ecrListTags(body []byte) (any, *apiError) {
	var req struct{ ResourceArn string }
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.repos {
		if r.arn == req.ResourceArn {
			tags := []jsonTag{}
			for k, v := range r.tags {
				tags = append(tags, jsonTag{k, v})
			}
			slices.SortFunc(tags, func(a, b jsonTag) int { return strings.Compare(a.Key, b.Key) })
			return map[string]any{"tags": tags}, nil
		}
	}
	return nil, errorf("InvalidParameterException", "Invalid parameter at 'resourceArn': repository %s not found", req.ResourceArn)
}

func (d *Double) ecrPutLifecyclePolicy(body []byte) (any, *apiError) {
	var req struct{ RepositoryName, LifecyclePolicyText string }
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	var policy struct {
		Rules []struct {
			RulePriority int             `json:"rulePriority"`
			Selection    json.RawMessage `json:"selection"`
			Action       struct{ Type string }
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(req.LifecyclePolicyText), &policy); err != nil || len(policy.Rules) == 0 {
		return nil, errorf("InvalidParameterException", "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure'")
	}
	for _, rule := range policy.Rules {
		if rule.RulePriority < 1 || len(rule.Selection) == 0 || rule.Action.Type != "expire" {
			return nil, errorf("InvalidParameterException", "Lifecycle policy validation failure: rule %d", rule.RulePriority)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.repos[req.RepositoryName]
	if r == nil {
		return nil, d.repoNotFound(req.RepositoryName)
	}
	r.lifecycle = req.LifecyclePolicyText
	return map[string]string{"registryId": d.opts.AccountID, "repositoryName": r.name, "lifecyclePolicyText": r.lifecycle}, nil
}

func (d *Double) ecrGetAuthorizationToken([]byte) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	token := base64.StdEncoding.EncodeToString([]byte("AWS:" + d.opts.RegistryPassword))
	return map[string]any{"authorizationData": []map[string]any{{
		"authorizationToken": token,
		"expiresAt":          epoch(d.opts.Now().Add(12 * time.Hour)),
		"proxyEndpoint":      d.opts.RegistryEndpoint,
	}}}, nil
}

// RegistryPassword is the password GetAuthorizationToken hands out, for a registry standing in for ECR.
func (d *Double) RegistryPassword() string { return d.opts.RegistryPassword }
