package awsdouble

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Config is an SDK configuration that sends every client to the double, with static
// credentials and a retryer that retries at once (throttling is absorbed without waiting).
func (d *Double) Config() aws.Config {
	return aws.Config{
		Region:       d.opts.Region,
		BaseEndpoint: aws.String(d.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIADOUBLEEXAMPLE", "double-secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 8
				o.Backoff = noBackoff{}
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// Instance is a snapshot of one instance for assertions.
type Instance struct {
	ID, State, ImageID, InstanceType, KeyName, SubnetID string
	PublicIP, ShutdownBehavior, HTTPTokens, ClientToken string
	SecurityGroups                                      []string
	Tags                                                map[string]string
	UserData                                            []byte // decoded
	Volumes                                             []Volume
}

// Volume is a snapshot of one EBS volume.
type Volume struct {
	ID, Type, State                string
	SizeGiB                        int
	Encrypted, DeleteOnTermination bool
	Tags                           map[string]string
}

// Instances lists every instance, terminated ones included, in launch order.
func (d *Double) Instances() []Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Instance
	for _, in := range sortedValues(d.instances, func(in *instance) string { return in.id }) {
		x := Instance{ID: in.id, State: in.state, ImageID: in.imageID, InstanceType: in.instanceType, KeyName: in.keyName,
			SubnetID: in.subnetID, PublicIP: in.publicIP, ShutdownBehavior: in.shutdownBehavior, HTTPTokens: in.httpTokens,
			ClientToken: in.clientToken, SecurityGroups: slices.Clone(in.groups), Tags: maps.Clone(in.tags), UserData: slices.Clone(in.userData)}
		for _, id := range in.volumes {
			if v := d.volumes[id]; v != nil {
				x.Volumes = append(x.Volumes, Volume{v.id, v.volType, v.state, v.size, v.encrypted, v.deleteOnTermination, maps.Clone(v.tags)})
			}
		}
		out = append(out, x)
	}
	return out
}

// SecurityGroup is a snapshot of one security group.
type SecurityGroup struct {
	ID, Name, VpcID string
	Ingress         []Permission
	Tags            map[string]string
}

// SecurityGroups lists the security groups, the default VPC's own "default" group included.
func (d *Double) SecurityGroups() []SecurityGroup {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []SecurityGroup
	for _, g := range sortedValues(d.groups, func(g *group) string { return g.id }) {
		out = append(out, SecurityGroup{g.id, g.name, g.vpcID, slices.Clone(g.ingress), maps.Clone(g.tags)})
	}
	return out
}

// KeyPair is a snapshot of one key pair.
type KeyPair struct {
	ID, Name, Type, PublicKey string
	Tags                      map[string]string
}

// KeyPairs lists the key pairs.
func (d *Double) KeyPairs() []KeyPair {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []KeyPair
	for _, k := range sortedValues(d.keyPairs, func(k *keyPair) string { return k.name }) {
		out = append(out, KeyPair{k.id, k.name, k.keyType, k.publicKey, maps.Clone(k.tags)})
	}
	return out
}

// Repository is a snapshot of one ECR repository.
type Repository struct {
	Name, Mutability, LifecyclePolicy string
	ScanOnPush                        bool
	Tags                              map[string]string
	Images                            []Image
}

// Image is one manifest in a repository with its tags.
type Image struct {
	Digest   string
	Tags     []string
	PushedAt time.Time
}

// Repository returns a snapshot of the named repository.
func (d *Double) Repository(name string) (Repository, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.repos[name]
	if r == nil {
		return Repository{}, false
	}
	out := Repository{r.name, r.mutability, r.lifecycle, r.scanOnPush, maps.Clone(r.tags), nil}
	for _, img := range sortedValues(r.images, func(i *image) string { return i.pushed.Format(time.RFC3339Nano) + i.digest }) {
		out.Images = append(out.Images, Image{img.digest, slices.Clone(img.tags), img.pushed})
	}
	return out, true
}

// Leftovers lists the live resources whose tag key has this value (any value when value is ""):
// instances not yet terminated, volumes, security groups, key pairs and repositories.
// A clean teardown leaves it empty.
func (d *Double) Leftovers(key, value string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	has := func(tags map[string]string) bool {
		v, ok := tags[key]
		return ok && (value == "" || v == value)
	}
	var out []string
	for _, in := range sortedValues(d.instances, func(in *instance) string { return in.id }) {
		if in.state != stateTerminated && has(in.tags) {
			out = append(out, fmt.Sprintf("instance %s (%s)", in.id, in.state))
		}
	}
	for _, v := range sortedValues(d.volumes, func(v *volume) string { return v.id }) {
		if has(v.tags) {
			out = append(out, fmt.Sprintf("volume %s (%s)", v.id, v.state))
		}
	}
	for _, g := range sortedValues(d.groups, func(g *group) string { return g.id }) {
		if has(g.tags) {
			out = append(out, fmt.Sprintf("security group %s (%s)", g.id, g.name))
		}
	}
	for _, k := range sortedValues(d.keyPairs, func(k *keyPair) string { return k.name }) {
		if has(k.tags) {
			out = append(out, "key pair "+k.name)
		}
	}
	for _, r := range sortedValues(d.repos, func(r *repository) string { return r.name }) {
		if has(r.tags) {
			out = append(out, "repository "+r.name)
		}
	}
	return out
}

// Settle answers DescribeInstances on behalf of a client until no instance is pending or
// shutting-down, as time passing would on AWS. It is for tests of a killed run.
func (d *Double) Settle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, in := range d.instances {
		for in.state == statePending || in.state == stateShuttingDown {
			d.advance(in)
		}
	}
}
