package remote

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// ImageRef is an image reference pinned by digest (repo@sha256:...). Pulls and runs take only this
// type, so a host never deploys whatever a mutable tag points at today.
type ImageRef struct {
	ref string
}

// ParseImageRef accepts a digest-pinned reference such as 123.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:<64 hex>.
func ParseImageRef(s string) (ImageRef, error) {
	if !strings.Contains(s, "@") {
		return ImageRef{}, fmt.Errorf("image %q: not pinned by digest (want repo@sha256:...)", s)
	}
	if _, err := name.NewDigest(s); err != nil {
		return ImageRef{}, fmt.Errorf("image %q: %w", s, err)
	}
	return ImageRef{ref: s}, nil
}

func (r ImageRef) String() string { return r.ref }

// Container is the one container the drill runs on a host.
type Container struct {
	Name          string // fixed, so stop and remove find it without remembering an id
	Image         ImageRef
	HostPort      int // published on the host, e.g. 80
	ContainerPort int // the app listens here, e.g. 5000
	Labels        map[string]string
}

// Login logs the remote docker into registry as user, reading the password from stdin
// (Runner option WithSecretStdin): never argv, where ps and logs would show it.
func Login(registry, user string) Command {
	return NewCommand("docker", "login", "--username", user, "--password-stdin", registry)
}

// Logout removes the credentials Login stored on the host.
func Logout(registry string) Command {
	return NewCommand("docker", "logout", registry)
}

// Pull fetches image by digest.
func Pull(image ImageRef) Command {
	return NewCommand("docker", "pull", image.String())
}

// ImagePresent succeeds (exit 0, printing the image id) only when image is already on the host:
// the way to check that a pre-pull happened, so a rollback needs no network.
func ImagePresent(image ImageRef) Command {
	return NewCommand("docker", "image", "inspect", "--format", "{{.Id}}", image.String())
}

// Run starts c detached. There is no restart policy, so a stopped container stays down (the drill's
// outage is real), and --pull never makes a missing image an error instead of a silent pull.
func Run(c Container) Command {
	argv := []string{"docker", "run", "--detach", "--name", c.Name, "--restart", "no", "--pull", "never",
		"--publish", strconv.Itoa(c.HostPort) + ":" + strconv.Itoa(c.ContainerPort)}
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		argv = append(argv, "--label", k+"="+c.Labels[k])
	}
	return NewCommand(append(argv, c.Image.String())...)
}

// Remove force-removes the container called name. Docker 20.10 and later exit 0 when it does not
// exist, so the step is idempotent.
func Remove(name string) Command {
	return NewCommand("docker", "rm", "--force", name)
}

// Replace removes any container of the same name (running or stopped), then runs c: `docker run
// --name` fails on a name that is taken, even by a stopped container.
func Replace(c Container) Command {
	return Sequence(Remove(c.Name), Run(c))
}

// Stop stops the container called name: SIGTERM, then SIGKILL after grace (whole seconds, rounded up).
// -t is the short flag both the old --time and the newer --timeout spellings accept.
func Stop(name string, grace time.Duration) Command {
	secs := int(math.Ceil(max(grace, 0).Seconds()))
	return NewCommand("docker", "stop", "-t", strconv.Itoa(secs), name)
}

// InspectState prints the container's state as JSON; read it with ParseState.
func InspectState(name string) Command {
	return NewCommand("docker", "container", "inspect", "--format", "{{json .State}}", name)
}

// ServerVersion prints the docker daemon's version: it fails until the daemon is up and the user
// may use its socket, which makes it the readiness check after boot.
func ServerVersion() Command {
	return NewCommand("docker", "version", "--format", "{{.Server.Version}}")
}

// ContainerState is the part of `docker container inspect` .State the drill reads.
type ContainerState struct {
	Status     string    `json:"Status"` // created, running, exited, ...
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`     // frozen by docker pause
	Restarting bool      `json:"Restarting"` // waiting for the restart policy to start it again
	Pid        int       `json:"Pid"`        // the main process on the host; 0 when not running
	ExitCode   int       `json:"ExitCode"`
	OOMKilled  bool      `json:"OOMKilled"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

// ParseState reads the output of InspectState.
func ParseState(out []byte) (ContainerState, error) {
	var s ContainerState
	if err := json.Unmarshal(out, &s); err != nil {
		return ContainerState{}, fmt.Errorf("parse container state %q: %w", truncate(string(out), 200), err)
	}
	return s, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
