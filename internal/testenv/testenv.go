// Package testenv gives tests the real components they integrate with: the Dagger engine that
// hack/engine.sh runs, the project's offline Python base image, and an OCI registry the engine
// can reach. A missing component skips a test on a developer's machine and fails it in CI.
package testenv

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"dagger.io/dagger"
	"golang.org/x/crypto/ssh"
)

// NewSSHKey makes a fresh ed25519 key pair: its signer, and its private key as the OpenSSH PEM
// file that sshd's HostKey (or ssh -i) reads.
func NewSSHKey() (ssh.Signer, []byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, err
	}
	return signer, pem.EncodeToMemory(block), nil
}

// SSHKey is NewSSHKey failing the test on error.
func SSHKey(t testing.TB) (ssh.Signer, []byte) {
	t.Helper()
	signer, keyPEM, err := NewSSHKey()
	if err != nil {
		t.Fatal(err)
	}
	return signer, keyPEM
}

// SSHDConfig is the sshd_config of an sshd a test runs itself (sshd -D -e -f): listening on
// listen (host:port), key-only login for user alone, no PAM, no pid file, log on stderr, and env
// (NAME=value) set in every session.
func SSHDConfig(listen, hostKeyFile, authorizedKeysFile, user string, env ...string) string {
	config := fmt.Sprintf(`ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
AllowUsers %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
PidFile none
LogLevel INFO
`, listen, hostKeyFile, authorizedKeysFile, user)
	if len(env) > 0 {
		config += "SetEnv " + strings.Join(env, " ") + "\n"
	}
	return config
}

// Require fails the test in CI (CI=true) and skips it elsewhere, saying how to get what is missing.
func Require(t testing.TB, what, how string) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%s is missing (CI must provide it): %s", what, how)
	}
	t.Skipf("%s is missing: %s", what, how)
}

// SkipShort skips a test that needs what under -short (hack/test.sh --short: unit tests only).
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: this test needs %s", what)
	}
}

// CacheDir is the project's cache directory (binaries, base image, engine state).
func CacheDir() string {
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" {
		return filepath.Join(dir, "deploydrill")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "deploydrill")
}

const engineHow = "run `eval \"$(hack/engine.sh start && hack/engine.sh env)\"` first, or use hack/test.sh"

// Dagger connects to the engine hack/engine.sh started; the client closes with the test.
// DRILL_TEST_ENGINE_LOG=1 logs the engine's progress.
func Dagger(t testing.TB) *dagger.Client {
	t.Helper()
	SkipShort(t, "the Dagger engine")
	if os.Getenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST") == "" && os.Getenv("DAGGER_SESSION_PORT") == "" {
		Require(t, "a Dagger engine", engineHow)
	}
	c, err := dagger.Connect(t.Context(), dagger.WithLogOutput(testWriter{t}))
	if err != nil {
		t.Fatalf("connect to dagger: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// EnginePID is the PID of the engine process (its network namespace hosts test registries).
func EnginePID(t testing.TB) int {
	t.Helper()
	SkipShort(t, "the Dagger engine")
	value := os.Getenv("DAGGER_ENGINE_PID")
	if value == "" {
		data, err := os.ReadFile(filepath.Join(CacheDir(), "engine", "engine.pid"))
		if err != nil {
			Require(t, "the engine's PID", engineHow)
		}
		value = strings.TrimSpace(string(data))
	}
	pid, err := strconv.Atoi(value)
	if err != nil {
		t.Fatalf("engine pid %q: %v", value, err)
	}
	return pid
}

// BaseImage is the offline Python base image tarball hack/base-image.sh makes.
func BaseImage(t testing.TB) string {
	t.Helper()
	SkipShort(t, "the offline base image")
	path := os.Getenv("DRILL_TEST_BASE_IMAGE")
	if path == "" {
		path = filepath.Join(CacheDir(), "base", "python-bookworm.tar")
	}
	if _, err := os.Stat(path); err != nil {
		Require(t, "the offline base image", "run hack/base-image.sh")
	}
	return path
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if os.Getenv("DRILL_TEST_ENGINE_LOG") != "" {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
