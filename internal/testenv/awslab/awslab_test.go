package awslab_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploydrill/deploydrill/infra/remote"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/teardown"
	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// TestLaunchSSHDockerAndTeardown takes the AWS target's path with the infra packages: launch
// against the double, SSH in with the pinned key as the remote user, docker login with the ECR
// token on stdin, pull by digest, run, probe from the host; then teardown leaves nothing.
func TestLaunchSSHDockerAndTeardown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l := awslab.Start(t, awslab.Options{WithoutEngine: true})
	r := newRun(t, l, "harness")
	defer r.teardown(t)

	repo, err := r.repo.EnsureRepository(ctx, r.spec().Run, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := l.RegistryHost() + "/app-harness"; repo.URI != want {
		t.Errorf("repository URI %s, want %s", repo.URI, want)
	}
	image, err := pushTestImage(t, l, "app-harness", "v1", "v1")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.repo.List(ctx)
	if err != nil || len(recs) != 1 || recs[0].Tag != "v1" {
		t.Fatalf("ECR lists %+v (%v) after the push, want tag v1", recs, err)
	}

	start := time.Now()
	if err := r.launch(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("launch to ssh-ready: %s", time.Since(start).Round(time.Millisecond))
	inst := l.Instances()
	if len(inst) != 1 || r.host.PublicIP.String() != inst[0].Addr || inst[0].User != l.RemoteUser() {
		t.Fatalf("instances %+v for host %s", inst, r.host)
	}
	runner, err := r.dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()
	run := func(cmd remote.Command, opts ...remote.RunOption) string {
		t.Helper()
		out, err := runner.Run(ctx, cmd, append(opts, remote.WithTimeout(2*time.Minute))...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if who := run(remote.NewCommand("id", "-un")); who != l.RemoteUser() {
		t.Errorf("logged in as %q, want %q", who, l.RemoteUser())
	}
	if v := run(remote.ServerVersion()); v == "" {
		t.Error("docker version printed no server version")
	}
	auth, err := r.repo.RegistryAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run(remote.Login(auth.Host, auth.User), remote.WithSecretStdin(auth.Password.Reveal()))
	run(remote.Pull(image))
	run(remote.Replace(remote.Container{Name: "app", Image: image, HostPort: 80, ContainerPort: 5000}))
	if v := waitHealthy(t, "http://"+r.host.PublicIP.String()+"/health"); v != "v1" {
		t.Errorf("health reports version %q, want v1", v)
	}
	runner.Close()

	r.teardown(t)
	l.AssertNothingLeft(t)
	if _, ok := l.Double.Repository("app-harness"); ok {
		t.Error("the ephemeral repository outlived the teardown")
	}
}

// TestFailuresTheLabInjects checks each switch does what a failure test relies on.
func TestFailuresTheLabInjects(t *testing.T) {
	t.Parallel()
	t.Run("a host key other than user-data's is refused at once", func(t *testing.T) {
		t.Parallel()
		l := awslab.Start(t, awslab.Options{WithoutEngine: true, WrongHostKey: true})
		r := newRun(t, l, "wrong-key")
		start := time.Now()
		err := r.launch(t.Context())
		var mismatch *remote.HostKeyMismatchError
		if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), "security") {
			t.Fatalf("launch: %v, want a host key mismatch that says security", err)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("the mismatch took %s to report: it was retried", took)
		}
		r.teardown(t)
		l.AssertNothingLeft(t)
	})
	t.Run("ssh refused during boot is retried", func(t *testing.T) {
		t.Parallel()
		l := awslab.Start(t, awslab.Options{WithoutEngine: true, SSHRefusedFor: 2 * time.Second})
		r := newRun(t, l, "slow-boot")
		if err := r.launch(t.Context()); err != nil {
			t.Fatal(err)
		}
		if l.SSHRefusals() == 0 {
			t.Error("no ssh connection was refused: the switch proves nothing")
		}
		if r.sshAfter < 2*time.Second {
			t.Errorf("ssh answered %s after launch, inside the refusal window", r.sshAfter)
		}
		t.Logf("%d connections refused, ssh ready %s after launch", l.SSHRefusals(), r.sshAfter.Round(time.Millisecond))
		r.teardown(t)
		l.AssertNothingLeft(t)
	})
	t.Run("pulls fail on the instance while login works", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		l := awslab.Start(t, awslab.Options{WithoutEngine: true, FailPulls: true})
		r := newRun(t, l, "no-pull")
		defer r.teardown(t)
		if _, err := r.repo.EnsureRepository(ctx, r.spec().Run, true); err != nil {
			t.Fatal(err)
		}
		image, err := pushTestImage(t, l, "app-no-pull", "v1", "v1")
		if err != nil {
			t.Fatal(err)
		}
		if err := r.launch(ctx); err != nil {
			t.Fatal(err)
		}
		runner, err := r.dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer runner.Close()
		auth, err := r.repo.RegistryAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := runner.Run(ctx, remote.Login(auth.Host, auth.User), remote.WithSecretStdin(auth.Password.Reveal())); err != nil {
			t.Fatalf("login: %v", err)
		}
		_, err = runner.Run(ctx, remote.Pull(image), remote.WithTimeout(time.Minute))
		if err == nil || !strings.Contains(err.Error(), "manifest unknown") {
			t.Fatalf("pull: %v, want manifest unknown", err)
		}
		runner.Close()
		r.teardown(t)
		l.AssertNothingLeft(t)
	})
}

// TestLeftoversSeeWhatTeardownMissed: a launch nobody tears down is reported, lab included;
// sweeping the run's tag clears it. Without this, AssertNothingLeft could pass by seeing nothing.
func TestLeftoversSeeWhatTeardownMissed(t *testing.T) {
	t.Parallel()
	l := awslab.Start(t, awslab.Options{WithoutEngine: true})
	r := newRun(t, l, "forgotten")
	if err := r.launch(t.Context()); err != nil {
		t.Fatal(err)
	}
	left := strings.Join(l.Leftovers(), "\n")
	for _, want := range []string{"instance " + r.host.InstanceID, "security group " + r.host.SecurityGroupID, "key pair " + r.host.KeyName, "lab awslab-"} {
		if !strings.Contains(left, want) {
			t.Errorf("leftovers do not name %q:\n%s", want, left)
		}
	}
	plan := teardown.Plan{Hosts: r.hosts, Log: r.log}
	if res, err := plan.Sweep(t.Context(), runtag.Selector{RunID: r.id}, false); err != nil || len(res.Remaining) > 0 {
		t.Fatalf("sweep: %v; remaining %v", err, res.Remaining)
	}
	l.AssertNothingLeft(t)
}

// TestSecurityGroupsAreEnforced: a port the instance's security group does not open for the
// client times out, as on EC2; opening it later takes effect at once.
func TestSecurityGroupsAreEnforced(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l := awslab.Start(t, awslab.Options{WithoutEngine: true})
	r := newRun(t, l, "firewall")
	spec := r.spec()
	spec.HTTPCIDR = netip.MustParsePrefix("192.0.2.0/24") // not the lab's network
	if err := r.launchSpec(ctx, spec); err != nil {       // ssh (open to the lab) works
		t.Fatal(err)
	}
	defer r.teardown(t)
	http := net.JoinHostPort(r.host.PublicIP.String(), "80")
	if err := dialOnce(http); err == nil || !isTimeout(err) {
		t.Fatalf("port 80 closed to this network: dial %v, want a timeout", err)
	}
	_, err := ec2sdk.NewFromConfig(l.Double.Config()).AuthorizeSecurityGroupIngress(ctx, &ec2sdk.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(r.host.SecurityGroupID),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80),
			IpRanges: []types.IpRange{{CidrIp: aws.String(awslab.SSHCIDR)}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dialOnce(http); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("port 80 opened, nothing listening: dial %v, want connection refused", err)
	}
}

func dialOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
