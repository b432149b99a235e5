package local_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/retention"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/localstore"
	"github.com/deploydrill/deploydrill/ci/pipeline"
	"github.com/deploydrill/deploydrill/ci/targets/local"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

// underDaggerRun marks the re-run of this test inside `dagger run`, where every plain Connect
// shares one session.
const underDaggerRun = "DRILL_TEST_UNDER_DAGGER_RUN"

// buildImages builds two versions of the real app into a fresh store.
func buildImages(t *testing.T, versions ...string) (*localstore.Store, []drill.Image) {
	t.Helper()
	c := testenv.Dagger(t)
	defer testenv.Slot(t, 1)() // builds are heavy work: the machine's slots bound it
	base, err := pipeline.ParseBase(testenv.BaseImage(t))
	if err != nil {
		t.Fatal(err)
	}
	store, err := localstore.Open(filepath.Join(t.TempDir(), "store"), "flask-app")
	if err != nil {
		t.Fatal(err)
	}
	appDir, _ := filepath.Abs("../../../app")
	var images []drill.Image
	for _, v := range versions {
		archive := filepath.Join(t.TempDir(), v+".tar")
		img := pipeline.Build(c, pipeline.Source{App: c.Host().Directory(appDir), Base: base, Version: v})
		if _, err := img.Export(t.Context(), archive); err != nil {
			t.Fatal(err)
		}
		stored, err := store.AddArchive(archive, v)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, stored)
	}
	return store, images
}

// stableVersion names a version after its test and a case: apart from every other test's, and
// the same on every run (the engine's cache serves its build).
func stableVersion(t *testing.T, name string) string {
	sum := sha256.Sum256([]byte(t.Name() + "/" + name))
	return "lt" + hex.EncodeToString(sum[:4])
}

func uniqueVersion(t *testing.T) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "lt" + hex.EncodeToString(b)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func healthVersion(url string) (string, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url + "/health")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct{ Status, Version string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || body.Status != "ok" {
		return "", fmt.Errorf("status %d %q", resp.StatusCode, body.Status)
	}
	return body.Version, nil
}

// healthyWait bounds one start of a version, from Deploy (or a crashloop's restart) to healthy.
const healthyWait = 30 * time.Second

// waitHealthy polls (bounded: healthyWait) until the endpoint reports version.
func waitHealthy(t *testing.T, url, version string) {
	t.Helper()
	deadline := time.Now().Add(healthyWait)
	for {
		got, err := healthVersion(url)
		if err == nil && got == version {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s to report %s: last %q %v", healthyWait, url, version, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestOutageKillsTheProcessAndRollbackStartsANewOne(t *testing.T) {
	v, k := uniqueVersion(t), uniqueVersion(t)
	store, images := buildImages(t, v, k)
	testenv.Slot(t, 1)
	target, err := local.New(local.Config{Images: store, Listen: freeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	keepBoth := retention.Policy{Keep: []string{v, k}}
	t.Cleanup(func() { target.Teardown(context.Background(), keepBoth) })
	ctx := t.Context()

	if err := target.Deploy(ctx, images[0]); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, target.Endpoint(), v)
	if pids := testenv.AppProcesses(v); len(pids) == 0 {
		t.Fatalf("no process of %s found while it answers", v)
	}

	if err := target.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := healthVersion(target.Endpoint()); err == nil {
		t.Error("the endpoint still answers after Stop")
	}
	if pids := testenv.AppProcesses(v); len(pids) > 0 {
		t.Errorf("the outage left %s's processes running: %v", v, pids)
	}

	if err := target.Deploy(ctx, images[1]); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, target.Endpoint(), k)
	if pids := testenv.AppProcesses(k); len(pids) == 0 {
		t.Error("the rollback did not start a new process")
	}
	td, err := target.Teardown(ctx, keepBoth)
	if err != nil || len(td.Left) > 0 {
		t.Fatalf("teardown: %v, left %q", err, td.Left)
	}
	if pids := testenv.AppProcesses(k); len(pids) > 0 {
		t.Errorf("teardown left %s's processes running: %v", k, pids)
	}
	if records, _ := store.List(ctx); len(records) != 2 {
		t.Errorf("retention kept %d images, want V and K", len(records))
	}
	if _, err := target.Teardown(ctx, keepBoth); err != nil {
		t.Errorf("a second teardown is a no-op, got %v", err)
	}
}

// The same, inside `dagger run`, where a shared session's Close does nothing.
func TestOutageKillsTheProcessUnderDaggerRun(t *testing.T) {
	if os.Getenv(underDaggerRun) != "" {
		t.Skip("already under dagger run")
	}
	bin := os.Getenv("_EXPERIMENTAL_DAGGER_CLI_BIN")
	if bin == "" {
		testenv.Require(t, "the dagger CLI", "hack/engine.sh env sets _EXPERIMENTAL_DAGGER_CLI_BIN")
	}
	cmd := exec.CommandContext(t.Context(), bin, "run", "--progress=plain", os.Args[0],
		"-test.run=^TestOutageKillsTheProcessAndRollbackStartsANewOne$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), underDaggerRun+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestOutageKillsTheProcessAndRollbackStartsANewOne") {
		t.Fatalf("under dagger run: %v\n%s", err, tail(string(out), 60))
	}
	if !strings.Contains(string(out), "DAGGER_SESSION_PORT=set") {
		t.Fatalf("the re-run did not see a shared session:\n%s", tail(string(out), 60))
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(underDaggerRun) != "" {
		state := "unset"
		if os.Getenv("DAGGER_SESSION_PORT") != "" {
			state = "set"
		}
		fmt.Println("DAGGER_SESSION_PORT=" + state)
	}
	os.Exit(m.Run())
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
