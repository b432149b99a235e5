package awslab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
	"github.com/deploydrill/deploydrill/internal/testenv/testimage"
)

// labTiming is DefaultTiming with waits sized for a machine, not a cloud.
func labTiming() ec2.Timing {
	p := func(timeout time.Duration) ec2.Poll {
		return ec2.Poll{Initial: 100 * time.Millisecond, Max: time.Second, Timeout: timeout}
	}
	return ec2.Timing{Running: p(30 * time.Second), Terminated: p(30 * time.Second), SSH: p(60 * time.Second),
		GroupDelete: p(30 * time.Second), Visibility: p(30 * time.Second)}
}

// run is one launch against the lab with the infra packages, the way the AWS target does it.
type run struct {
	lab   *awslab.Lab
	id    string
	hosts *ec2.Hosts
	repo  *ecr.Repository
	host  *ec2.Host
}

func newRun(t *testing.T, l *awslab.Lab, id string) *run {
	cfg := l.Double.Config()
	r := &run{lab: l, id: id, repo: ecr.NewFromConfig(cfg, "app-"+id)}
	r.hosts = ec2.NewFromConfig(cfg, ec2.Options{
		AMIs:   ssm.NewFromConfig(cfg),
		Timing: labTiming(),
		Logf:   t.Logf,
		DetectIP: func(context.Context) (netip.Addr, error) {
			return netip.Addr{}, errors.New("the lab passes --ssh-cidr: nothing may look up a public ip")
		},
	})
	return r
}

func (r *run) spec() ec2.HostSpec {
	return ec2.HostSpec{
		Run:     runtag.Run{ID: r.id, App: "awslab", GitSHA: "abc1234", CreatedAt: time.Now(), Lifetime: 30 * time.Minute},
		SSHCIDR: netip.MustParsePrefix(awslab.SSHCIDR),
		User:    r.lab.RemoteUser(),
	}
}

func (r *run) launch(ctx context.Context) error {
	var err error
	r.host, err = r.hosts.LaunchHost(ctx, r.spec())
	return err
}

// teardown runs the run's teardown steps, as the drill's deferred teardown does.
func (r *run) teardown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	plan := teardown.Plan{RunID: r.id, Hosts: r.hosts, Host: r.host, Repository: r.repo, Logf: t.Logf}
	if err := teardown.Run(ctx, plan.Steps(), &progress); err != nil {
		t.Errorf("teardown: %v\n%s", err, progress.String())
	}
}

// dial logs in with the run's client key and the pinned host key, as the AWS target does.
func (r *run) dial(ctx context.Context) (*remote.Runner, error) {
	return remote.Dial(ctx, remote.Config{Addr: r.host.SSHAddr(), User: r.host.User, Signer: r.host.Signer(), HostKey: r.host.HostKey, RetryFor: 30 * time.Second})
}

// pushTestImage pushes a tiny image whose /health reports version to repo:tag through the
// registry's host listener and returns its digest-pinned reference.
func pushTestImage(t *testing.T, l *awslab.Lab, repo, tag, version string) (remote.ImageRef, error) {
	t.Helper()
	img, err := testimage.Build(t.Context(), version)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(l.RegistryHost()+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := &authn.Basic{Username: "AWS", Password: l.RegistryPassword()}
	if err := ggcr.Write(ref, img, ggcr.WithContext(t.Context()), ggcr.WithAuth(auth)); err != nil {
		return remote.ImageRef{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return remote.ParseImageRef(l.RegistryHost() + "/" + repo + "@" + digest.String())
}

// waitHealthy polls url until /health answers ok, for up to 30 s, and returns the version.
func waitHealthy(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			var body struct{ Status, Version string }
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK && body.Status == "ok" {
				return body.Version
			}
			err = fmt.Errorf("status %d: %+v (%v)", resp.StatusCode, body, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting for %s: %v", url, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
