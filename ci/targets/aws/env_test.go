package aws_test

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/targets/aws"
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
	commands []string // every command line, in order
	rules    []string // iptables rules inserted and not deleted (their comments)
	failing  string   // a command containing this fails (exit 1)
}

func (f *fakeDocker) exec(e awsdouble.Exec) awsdouble.ExecResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands = append(f.commands, e.Command)
	switch {
	case f.failing != "" && strings.Contains(e.Command, f.failing):
		return awsdouble.ExecResult{Status: 1, Stderr: "injected failure"}
	case strings.Contains(e.Command, "iptables") && strings.Contains(e.Command, " -I "):
		f.rules = append(f.rules, ruleComment(e.Command))
	case strings.Contains(e.Command, "iptables") && strings.Contains(e.Command, " -D "):
		i := slices.Index(f.rules, ruleComment(e.Command))
		if i < 0 {
			return awsdouble.ExecResult{Status: 1, Stderr: "iptables: Bad rule (does a matching rule exist in that chain?)."}
		}
		f.rules = slices.Delete(f.rules, i, i+1)
	case strings.Contains(e.Command, "iptables") && strings.Contains(e.Command, " -S "):
		out := "-P PREROUTING ACCEPT\n"
		for _, c := range f.rules {
			out += `-A PREROUTING -p tcp -m tcp --dport 80 -m comment --comment "` + c + `" -j DROP` + "\n"
		}
		return awsdouble.ExecResult{Stdout: out}
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

// ruleComment is the quoted --comment of an iptables command line.
func ruleComment(line string) string {
	_, rest, _ := strings.Cut(line, "--comment '")
	c, _, _ := strings.Cut(rest, "'")
	return c
}

// sent returns the command lines that contain substr, in order.
func (f *fakeDocker) sent(substr string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.commands {
		if strings.Contains(c, substr) {
			out = append(out, c)
		}
	}
	return out
}

// rulesNow are the comments of the rules on the "host".
func (f *fakeDocker) rulesNow() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rules)
}

func (f *fakeDocker) fail(substr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = substr
}

func (f *fakeDocker) snapshot() (versions []int, logins []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.versions...), append([]string(nil), f.logins...)
}
