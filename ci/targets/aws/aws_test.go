package aws_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/targets/aws"
	"github.com/deploydrill/deploydrill/infra/elbv2"
	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/retention"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

func TestNewRefusesBadInputBeforeAnyCall(t *testing.T) {
	tests := []struct {
		name string
		edit func(*aws.Config)
		want string
	}{
		{"a mistyped region", func(c *aws.Config) { c.AWS.Region = "eu-wset-1" }, "did you mean eu-west-1"},
		{"no region", func(c *aws.Config) { c.AWS.Region = "" }, "region"},
		{"a run id with capitals", func(c *aws.Config) { c.Run.ID = "Run1" }, `run id "Run1"`},
		{"an ami id of the wrong shape", func(c *aws.Config) { c.Host.AMI = "ami-xyz" }, "not an image id"},
		{"a subnet id of the wrong shape", func(c *aws.Config) { c.Host.SubnetID = "sub-0123abcd" }, "not a subnet id"},
		{"an ssh cidr with host bits", func(c *aws.Config) { c.Host.SSHCIDR = netip.MustParsePrefix("198.51.100.7/24") }, "did you mean 198.51.100.0/24"},
		{"an instance type of the wrong shape", func(c *aws.Config) { c.Host.InstanceType = "micro" }, "not an instance type"},
		{"a repository name in capitals", func(c *aws.Config) { c.Repository = "Drill" }, `repository "Drill"`},
		{"a repository name ending in a separator", func(c *aws.Config) { c.Repository = "drill-" }, "not an ECR repository name"},
		{"a one-letter repository name", func(c *aws.Config) { c.Repository = "d" }, "not an ECR repository name"},
		{"a port out of range", func(c *aws.Config) { c.HTTPPort = 70000 }, "http port 70000"},
		{"a fleet faulting more hosts than it has", func(c *aws.Config) { c.Fleet = aws.Fleet{Hosts: 3, FaultHosts: 4} }, "fault hosts 4"},
		{"a fleet in one subnet", func(c *aws.Config) { c.Fleet.Hosts, c.Host.SubnetID = 2, "subnet-0123abcd" }, "two or more zones"},
		{"a fleet checked too often", func(c *aws.Config) {
			c.Fleet = aws.Fleet{Hosts: 2, Health: elbv2.HealthCheck{Interval: 3 * time.Second}}
		}, "health check interval 3s"},
		{"a fleet larger than a run may be", func(c *aws.Config) { c.Fleet.Hosts = 101 }, "hosts 101"},
		{"two mistakes at once are both reported", func(c *aws.Config) { c.Host.AMI, c.Repository = "ami-1", "Drill" }, "not an image id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.edit(&e.cfg)
			_, err := aws.New(e.cfg)
			if !errors.Is(err, aws.ErrInvalidInput) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want ErrInvalidInput saying %q", err, tt.want)
			}
			if ops := e.d.Operations(); len(ops) != 0 {
				t.Errorf("New called AWS: %v", ops)
			}
		})
	}
	t.Run("the defaults pass", func(t *testing.T) {
		if _, err := aws.New(newEnv(t).cfg); err != nil {
			t.Fatal(err)
		}
	})
}

func TestProvisionWaitsForSSHOnceThenForDockerOnNewLogins(t *testing.T) {
	// sshd refuses the first connections (booting), then Docker refuses the remote user on the
	// first two logins (cloud-init adds them to the docker group later; an old login never gets it).
	e := newEnv(t, func(e *env) { e.sshd.RefuseFirst, e.docker.readyAt = 3, 3 })
	tg := e.target(t)
	e.up(t, tg)
	versions, logins := e.docker.snapshot()
	if !slices.Equal(versions, []int{1, 2, 3}) {
		t.Errorf("docker version ran on logins %v, want 1, 2, 3: one new login per attempt", versions)
	}
	if !slices.Equal(logins, []string{e.d.RegistryPassword()}) {
		t.Errorf("docker login got %d stdins, want the registry password once", len(logins))
	}
	if n := e.sshd.Logins(); n != 3 {
		t.Errorf("%d ssh logins, want 3 (the first dial, then one per docker retry)", n)
	}
	if got, want := tg.Endpoint(), "http://127.0.0.1:80"; got != want {
		t.Errorf("Endpoint = %s, want %s", got, want)
	}
}

func TestProvisionFailures(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*env)
		check   func(*testing.T, error)
		maxTook time.Duration
	}{
		{"a host presenting another key is a security error, not a retry", func(e *env) {
			impostor, _ := testenv.SSHKey(t)
			e.sshd.HostKeyOverride = impostor
		}, func(t *testing.T, err error) {
			var mismatch *remote.HostKeyMismatchError
			if !errors.As(err, &mismatch) {
				t.Errorf("err = %v, want *remote.HostKeyMismatchError", err)
			}
		}, 2 * time.Second},
		{"ssh that never answers times out naming the wait, once", func(e *env) {
			e.cfg.SSHPort = closedPort(t)
			e.cfg.SSHReady = 200 * time.Millisecond
			e.cfg.DockerReady = time.Hour // a wait nested in the docker poll would take this long
		}, func(t *testing.T, err error) {
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 200ms waiting for ssh on") {
				t.Errorf("err = %v", err)
			}
		}, 3 * time.Second},
		{"docker that never answers times out naming the wait and the last error", func(e *env) {
			e.docker.never = true
			e.cfg.DockerPoll.Timeout = 100 * time.Millisecond
		}, func(t *testing.T, err error) {
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for docker on") ||
				!strings.Contains(err.Error(), "permission denied") {
				t.Errorf("err = %v", err)
			}
		}, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.edit)
			tg := e.target(t)
			if _, err := tg.Registry(t.Context()); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := tg.Provision(t.Context())
			if took := time.Since(start); took > tt.maxTook {
				t.Errorf("Provision took %s, want under %s", took, tt.maxTook)
			}
			tt.check(t, err)
			if td, err := tg.Teardown(t.Context(), retention.Policy{}); err != nil || len(td.Left) != 0 {
				t.Errorf("teardown after the failure: %v, left %v", err, td.Left)
			}
			if left := e.d.Leftovers(runtag.KeyRunID, "r1"); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestProvisionWithoutARegistryCredentialCreatesNothing(t *testing.T) {
	e := newEnv(t)
	if err := e.target(t).Provision(t.Context()); err == nil || !strings.Contains(err.Error(), "Registry did not run") {
		t.Fatalf("Provision = %v, want it to need the registry credential first", err)
	}
	if ops := e.d.Operations(); len(ops) != 0 {
		t.Errorf("called AWS: %v", ops)
	}
}
