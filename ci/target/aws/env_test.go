package aws_test

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/target/aws"
	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/wait"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// env is the AWS double with an sshd that boots from user-data and plays Docker, and a target
// configuration pointing at both with millisecond polls: a whole Provision and Teardown run on
// loopback, with no Dagger and no lab.
type env struct {
	d      *awsdouble.Double
	sshd   *awsdouble.SSHD
	docker *fakeDocker
	cfg    aws.Config
}

var created = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, edit ...func(*env)) *env {
	t.Helper()
	d := awsdouble.New(awsdouble.Options{PendingDescribes: 2, ShuttingDownDescribes: 2, NotFoundCalls: 1, DependencyAttempts: 2})
	t.Cleanup(d.Close)
	sshd, err := awsdouble.StartSSHD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sshd.Close() })
	docker := &fakeDocker{password: d.RegistryPassword()}
	sshd.Exec = docker.exec
	d.OnRunInstances = sshd.Boot
	fast := wait.Poll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: 5 * time.Second}
	e := &env{d: d, sshd: sshd, docker: docker, cfg: aws.Config{
		AWS:        d.Config(),
		Run:        runtag.Run{ID: "r1", App: "app", GitSHA: "abc1234", CreatedAt: created, Lifetime: 30 * time.Minute},
		Host:       ec2.HostSpec{SSHCIDR: netip.MustParsePrefix("203.0.113.7/32")},
		Repository: "drill",
		Ephemeral:  true,
		SSHPort:    sshd.Port(),
		SSHReady:   5 * time.Second,
		DockerPoll: wait.Poll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: 5 * time.Second},
		Log:        slog.New(slog.NewTextHandler(t.Output(), nil)),
		Timing: ec2.Timing{Running: fast, Terminated: fast, Visibility: fast,
			GroupDelete: wait.Poll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: 300 * time.Millisecond}},
		DetectIP: func(context.Context) (netip.Addr, error) { panic("the test passes an ssh cidr") },
	}}
	for _, f := range edit {
		f(e)
	}
	return e
}

func (e *env) target(t *testing.T) *aws.Target {
	t.Helper()
	tg, err := aws.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// up runs Registry and Provision, as the pipeline does before the drill.
func (e *env) up(t *testing.T, tg *aws.Target) {
	t.Helper()
	if _, err := tg.Registry(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tg.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// fakeDocker plays the host's docker for the double's sshd: `docker version` fails for the
// remote user until login readyAt (cloud-init has not added them to the docker group yet),
// `docker login` checks the password on stdin, everything else succeeds.
type fakeDocker struct {
	password string
	readyAt  int // the first login whose `docker version` answers; 0: the first
	never    bool

	mu       sync.Mutex
	versions []int // the login each `docker version` ran on
	logins   []string
}

func (f *fakeDocker) exec(e awsdouble.Exec) awsdouble.ExecResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case strings.Contains(e.Command, "docker version"):
		f.versions = append(f.versions, e.Login)
		if f.never || e.Login < f.readyAt {
			return awsdouble.ExecResult{Status: 1, Stderr: "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock"}
		}
		return awsdouble.ExecResult{Stdout: "27.5.1\n"}
	case strings.Contains(e.Command, "docker login"):
		f.logins = append(f.logins, string(e.Stdin))
		if string(e.Stdin) != f.password {
			return awsdouble.ExecResult{Status: 1, Stderr: "unauthorized: incorrect username or password"}
		}
		return awsdouble.ExecResult{Stdout: "Login Succeeded\n"}
	}
	return awsdouble.ExecResult{}
}

func (f *fakeDocker) snapshot() (versions []int, logins []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.versions...), append([]string(nil), f.logins...)
}
