package awslab_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/deploydrill/deploydrill/infra/wait"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
	"github.com/deploydrill/deploydrill/internal/testenv/testimage"
)

// labTiming is DefaultTiming with waits sized for a machine, not a cloud.
func labTiming() ec2.Timing {
	p := func(timeout time.Duration) wait.Poll {
		return wait.Poll{Initial: 100 * time.Millisecond, Max: time.Second, Timeout: timeout}
	}
	return ec2.Timing{Running: p(30 * time.Second), Terminated: p(30 * time.Second),
		GroupDelete: p(30 * time.Second), Visibility: p(30 * time.Second)}
}

// run is one launch against the lab with the infra packages, the way the AWS target does it.
type run struct {
	lab      *awslab.Lab
	id       string
	log      *slog.Logger
	hosts    *ec2.Hosts
	repo     *ecr.Repository
	host     *ec2.Host
	sshAfter time.Duration // RunInstances until SSH answered
}

func newRun(t *testing.T, l *awslab.Lab, id string) *run {
	cfg := l.Double.Config()
	r := &run{lab: l, id: id, repo: ecr.NewFromConfig(cfg, "app-"+id), log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	r.hosts = ec2.NewFromConfig(cfg, ec2.Options{
		AMIs:   ssm.NewFromConfig(cfg),
		Timing: labTiming(),
		Log:    r.log,
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

// launch boots the host and waits once for SSH with the pinned key, as the AWS target does.
func (r *run) launch(ctx context.Context) error {
	return r.launchSpec(ctx, r.spec())
}

func (r *run) launchSpec(ctx context.Context, spec ec2.HostSpec) error {
	var err error
	if r.host, err = r.hosts.LaunchHost(ctx, spec); err != nil {
		return err
	}
	runner, err := r.dialFor(ctx, 60*time.Second)
	if err != nil {
		return err
	}
	r.sshAfter = time.Since(r.host.LaunchedAt)
	return runner.Close()
}

// teardown runs the run's teardown steps, as the drill's deferred teardown does.
func (r *run) teardown(t *testing.T) {
	t.Helper()
	ctx, cancel := teardown.FreshContext(t.Context(), 2*time.Minute)
	defer cancel()
	plan := teardown.Plan{Hosts: r.hosts, Repositories: []*ecr.Repository{r.repo}, Log: r.log}
	if res := plan.Remove(ctx, teardown.ForRun(r.id, r.host), false); res.Err() != nil {
		t.Errorf("teardown: %v; may remain: %v", res.Err(), res.Remaining)
	}
}

// dial logs in with the run's client key and the pinned host key, as the AWS target does.
func (r *run) dial(ctx context.Context) (*remote.Runner, error) {
	return r.dialFor(ctx, 30*time.Second)
}

func (r *run) dialFor(ctx context.Context, retry time.Duration) (*remote.Runner, error) {
	return remote.Dial(ctx, remote.Config{Addr: r.host.SSHAddr(), User: r.host.User, Signer: r.host.Signer(), HostKey: r.host.HostKey,
		RetryFor: retry, Logger: r.log})
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
