package remote

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/golden"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func mustRef(t *testing.T, s string) ImageRef {
	t.Helper()
	ref, err := ParseImageRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestCommandsGolden pins the exact line every builder sends over SSH, like kamal's
// test/commands/app_test.rb. Refresh with: go test ./infra/remote -run TestCommandsGolden -update
func TestCommandsGolden(t *testing.T) {
	ecr := "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	image := mustRef(t, ecr+"/deploydrill@"+testDigest)
	app := Container{
		Name: "deploydrill-app", Image: image, HostPort: 80, ContainerPort: 5000,
		Labels: map[string]string{"deploydrill.version": "a1b2c3d", "deploydrill.run": "run 42's"},
	}
	tests := []struct {
		golden string
		cmd    Command
	}{
		{"login", Login(ecr, "AWS")},
		{"logout", Logout(ecr)},
		{"pull", Pull(image)},
		{"image_present", ImagePresent(image)},
		{"run", Run(app)},
		{"run_without_labels", Run(Container{Name: "app", Image: image, HostPort: 8080, ContainerPort: 5000})},
		{"remove", Remove("deploydrill-app")},
		{"replace", Replace(app)},
		{"stop", Stop("deploydrill-app", 10*time.Second)},
		{"stop_rounds_grace_up", Stop("deploydrill-app", 1500*time.Millisecond)},
		{"stop_without_grace", Stop("deploydrill-app", 0)},
		{"inspect_state", InspectState("deploydrill-app")},
		{"server_version", ServerVersion()},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := strings.Join(tt.cmd.Lines(), "\n") + "\n"
			golden.Check(t, filepath.Join("testdata", tt.golden+".golden"), []byte(got))
		})
	}
}

func TestLoginNeverTakesThePassword(t *testing.T) {
	for _, argv := range Login("registry.example:5000", "AWS").Steps() {
		if !strings.Contains(strings.Join(argv, " "), "--password-stdin") {
			t.Errorf("login argv %q does not read the password from stdin", argv)
		}
	}
}

func TestParseImageRef(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"a digest reference on a registry with a port is accepted", "10.213.0.1:5000/app@" + testDigest, ""},
		{"a tag and a digest are accepted (docker ignores the tag)", "registry.example/app:v1@" + testDigest, ""},
		{"a tag alone is refused", "registry.example/app:latest", "not pinned by digest"},
		{"a short digest is refused", "registry.example/app@sha256:abc", "sha256:abc"},
		{"an empty reference is refused", "", "not pinned by digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := ParseImageRef(tt.in)
			if tt.wantErr == "" {
				if err != nil || ref.String() != tt.in {
					t.Fatalf("ParseImageRef(%q) = %q, %v", tt.in, ref, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseImageRef(%q) error = %v, want it to mention %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	// Captured from docker 20.10 `docker container inspect --format '{{json .State}}'` after docker stop.
	out := `{"Status":"exited","Running":false,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":137,"Error":"","StartedAt":"2026-01-02T03:04:05.123456789Z","FinishedAt":"2026-01-02T03:04:09.5Z"}` + "\n"
	s, err := ParseState([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := ContainerState{Status: "exited", ExitCode: 137,
		StartedAt:  time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		FinishedAt: time.Date(2026, 1, 2, 3, 4, 9, 500000000, time.UTC)}
	if s != want {
		t.Errorf("ParseState = %+v, want %+v", s, want)
	}
	if _, err := ParseState([]byte("Error: No such container: x")); err == nil {
		t.Error("ParseState accepted docker's error text")
	}
}

func TestSequenceKeepsStepsInOrder(t *testing.T) {
	c := Sequence(NewCommand("a", "1"), Sequence(NewCommand("b"), NewCommand("c", "x y")))
	if got, want := c.String(), "a 1 && b && c 'x y'"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := strings.Join(c.Lines(), "\n"), "echo $$; exec a 1\necho $$; exec b\necho $$; exec c 'x y'"; got != want {
		t.Errorf("Lines() = %q, want %q", got, want)
	}
}
