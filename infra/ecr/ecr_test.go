package ecr_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

var run = runtag.Run{ID: "r1", App: "app", GitSHA: "abc1234", CreatedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), Lifetime: 30 * time.Minute}

func newDouble(t *testing.T, o awsdouble.Options) *awsdouble.Double {
	t.Helper()
	d := awsdouble.New(o)
	t.Cleanup(d.Close)
	return d
}

func TestEnsureRepository(t *testing.T) {
	t.Run("a missing repository is created immutable, scanned, tagged, with a lifecycle backstop", func(t *testing.T) {
		d := newDouble(t, awsdouble.Options{})
		got, err := ecr.NewFromConfig(d.Config(), "drill").EnsureRepository(t.Context(), run, true)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Created || !got.Ephemeral || !strings.HasSuffix(got.URI, "/drill") {
			t.Errorf("ensured %+v", got)
		}
		repo, _ := d.Repository("drill")
		if repo.Mutability != "IMMUTABLE" || !repo.ScanOnPush || repo.LifecyclePolicy != ecr.LifecyclePolicy {
			t.Errorf("repository %+v", repo)
		}
		for _, tag := range run.Tags() {
			if repo.Tags[tag.Key] != tag.Value {
				t.Errorf("tag %s = %q, want %q", tag.Key, repo.Tags[tag.Key], tag.Value)
			}
		}
		if repo.Tags[runtag.KeyEphemeral] != "true" {
			t.Errorf("ephemeral mark missing: %v", repo.Tags)
		}
	})
	t.Run("an existing repository is used as it is", func(t *testing.T) {
		d := newDouble(t, awsdouble.Options{})
		if err := d.CreateRepository("drill", false, nil); err != nil {
			t.Fatal(err)
		}
		got, err := ecr.NewFromConfig(d.Config(), "drill").EnsureRepository(t.Context(), run, true)
		if err != nil || got.Created || got.Ephemeral {
			t.Fatalf("ensured %+v, %v; want it used, not created", got, err)
		}
		if repo, _ := d.Repository("drill"); repo.Mutability != "MUTABLE" || repo.LifecyclePolicy != "" || len(repo.Tags) != 0 {
			t.Errorf("an existing repository was changed: %+v", repo)
		}
	})
	t.Run("a failed lifecycle policy still reports the created repository", func(t *testing.T) {
		d := newDouble(t, awsdouble.Options{})
		d.Inject(awsdouble.Fault{Op: "ecr:PutLifecyclePolicy", Code: "AccessDeniedException"})
		got, err := ecr.NewFromConfig(d.Config(), "drill").EnsureRepository(t.Context(), run, true)
		if err == nil || !got.Created {
			t.Fatalf("ensured %+v, %v; want an error and Created so teardown can delete it", got, err)
		}
	})
}

func TestRegistryAuthKeepsThePasswordSecret(t *testing.T) {
	d := newDouble(t, awsdouble.Options{RegistryEndpoint: "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", RegistryPassword: "hunter2-very-secret"})
	auth, err := ecr.NewFromConfig(d.Config(), "drill").RegistryAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if auth.User != "AWS" || auth.Password.Reveal() != "hunter2-very-secret" || auth.Host != "123456789012.dkr.ecr.eu-west-1.amazonaws.com" || time.Until(auth.ExpiresAt) < time.Hour {
		t.Errorf("auth = %+v (password ok: %v)", auth, auth.Password.Reveal() == "hunter2-very-secret")
	}
	type holder struct{ auth ecr.Auth } // even an unexported field must not print it
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("auth", "auth", auth, "password", auth.Password)
	js, _ := json.Marshal(auth)
	renderings := map[string]string{
		"%v": fmt.Sprintf("%v", auth), "%+v": fmt.Sprintf("%+v", auth), "%#v": fmt.Sprintf("%#v", auth),
		"%s": fmt.Sprintf("%s", auth.Password), "%q": fmt.Sprintf("%q", auth.Password), "%x": fmt.Sprintf("%x", auth.Password),
		"nested": fmt.Sprintf("%+v", holder{auth}), "json": string(js), "slog": logged.String(),
	}
	for how, s := range renderings {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s leaks the password: %s", how, s)
		}
	}
}
