package awslab_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/retention"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// TestRegistryKeepsToECR: the registry and the double's ECR agree, as ECR's registry endpoint
// and API do.
func TestRegistryKeepsToECR(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l := awslab.Start(t, awslab.Options{WithoutEngine: true})
	repo := ecr.NewFromConfig(l.Double.Config(), "app")
	run := runtag.Run{ID: "reg", CreatedAt: time.Now(), Lifetime: time.Hour}
	if _, err := repo.EnsureRepository(ctx, run, false); err != nil {
		t.Fatal(err)
	}
	v1, err := pushTestImage(t, l, "app", "v1", "v1")
	if err != nil {
		t.Fatal(err)
	}
	auth := ggcr.WithAuth(&authn.Basic{Username: "AWS", Password: l.RegistryPassword()})
	get := func(ref string, opts ...ggcr.Option) (string, error) {
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := ggcr.Head(r, append([]ggcr.Option{ggcr.WithContext(ctx)}, opts...)...)
		if err != nil {
			return "", err
		}
		return desc.Digest.String(), nil
	}

	t.Run("a push is what ECR lists", func(t *testing.T) {
		img, err := repo.Resolve(ctx, "v1")
		if err != nil || img.Ref != v1.String() {
			t.Fatalf("ECR resolves v1 to %q (%v), want %s", img.Ref, err, v1)
		}
	})
	t.Run("a verified mark put through ECR's API is pullable by tag", func(t *testing.T) {
		if err := repo.MarkVerified(ctx, "v1"); err != nil {
			t.Fatal(err)
		}
		digest, err := get(l.RegistryHost()+"/app:"+retention.VerifiedTag("v1"), auth)
		if err != nil || !strings.HasSuffix(v1.String(), digest) {
			t.Fatalf("verified-v1 is %q (%v), want the digest of %s", digest, err, v1)
		}
	})
	t.Run("an immutable tag refuses another image", func(t *testing.T) {
		if _, err := pushTestImage(t, l, "app", "v1", "v1"); err != nil {
			t.Fatalf("pushing the same image again: %v", err)
		}
		_, err := pushTestImage(t, l, "app", "v1", "v2")
		if err == nil || !strings.Contains(err.Error(), "TAG_INVALID") || !strings.Contains(err.Error(), "immutable") {
			t.Fatalf("re-tagging v1: %v, want TAG_INVALID ... immutable", err)
		}
	})
	t.Run("a repository ECR does not have takes no push", func(t *testing.T) {
		_, err := pushTestImage(t, l, "nowhere", "v1", "v1")
		if err == nil || !strings.Contains(err.Error(), "NAME_UNKNOWN") {
			t.Fatalf("push: %v, want NAME_UNKNOWN", err)
		}
	})
	t.Run("no token, no pull", func(t *testing.T) {
		_, err := get(v1.String())
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("anonymous pull: %v, want 401", err)
		}
		resp, err := http.Get("http://" + l.RegistryHost() + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("GET /v2/ without auth: %d %q, want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("a deleted repository serves nothing", func(t *testing.T) {
		if err := repo.DeleteRepository(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := get(v1.String(), auth)
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("pull after delete: %v, want 404", err)
		}
	})
}
