package ec2_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// runnerIP is what the injected detector reports; nothing ever connects to it.
var runnerIP = netip.MustParseAddr("203.0.113.7")

func fastTiming() ec2.Timing {
	p := ec2.Poll{Initial: time.Millisecond, Max: 5 * time.Millisecond, Timeout: 5 * time.Second}
	return ec2.Timing{Running: p, Terminated: p, SSH: p, GroupDelete: p, Visibility: p}
}

type env struct {
	d     *awsdouble.Double
	sshd  *awsdouble.SSHD
	hosts *ec2.Hosts
}

// realistic makes the double behave like AWS: pending, shutting-down, ids briefly unknown,
// groups released late.
func realistic(o awsdouble.Options) awsdouble.Options {
	o.PendingDescribes, o.ShuttingDownDescribes, o.NotFoundCalls, o.DependencyAttempts = 2, 2, 1, 2
	return o
}

// newEnv starts a realistic double, an sshd that boots from user-data, and Hosts wired to
// both with millisecond polls.
func newEnv(t *testing.T, o awsdouble.Options, edit ...func(*ec2.Options)) *env {
	t.Helper()
	d := awsdouble.New(realistic(o))
	t.Cleanup(d.Close)
	sshd, err := awsdouble.StartSSHD()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sshd.Close() })
	d.OnRunInstances = sshd.Boot
	opts := ec2.Options{
		AMIs:     ssm.NewFromConfig(d.Config()),
		DetectIP: func(context.Context) (netip.Addr, error) { return runnerIP, nil },
		Timing:   fastTiming(),
		SSHPort:  sshd.Port(),
		Logf:     t.Logf,
	}
	for _, e := range edit {
		e(&opts)
	}
	return &env{d: d, sshd: sshd, hosts: ec2.NewFromConfig(d.Config(), opts)}
}

func testRun(id string) runtag.Run {
	return runtag.Run{ID: id, App: "app", GitSHA: "abc1234", CreatedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), Lifetime: 30 * time.Minute}
}
