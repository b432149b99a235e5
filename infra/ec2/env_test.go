package ec2_test

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/infra/wait"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// runnerIP is what the injected detector reports; nothing ever connects to it.
var runnerIP = netip.MustParseAddr("203.0.113.7")

func fastTiming() ec2.Timing {
	p := wait.Poll{Initial: time.Millisecond, Max: 5 * time.Millisecond, Timeout: 5 * time.Second}
	return ec2.Timing{Running: p, Terminated: p, GroupDelete: p, Visibility: p}
}

type env struct {
	d     *awsdouble.Double
	hosts *ec2.Hosts
}

// realistic makes the double behave like AWS: pending, shutting-down, ids briefly unknown,
// groups released late.
func realistic(o awsdouble.Options) awsdouble.Options {
	o.PendingDescribes, o.ShuttingDownDescribes, o.NotFoundCalls, o.DependencyAttempts = 2, 2, 1, 2
	return o
}

// newEnv starts a realistic double and Hosts wired to it with millisecond polls. Nothing here
// dials SSH: that is infra/remote's (and the AWS target's tests cover the whole boot).
func newEnv(t *testing.T, o awsdouble.Options, edit ...func(*ec2.Options)) *env {
	t.Helper()
	d := awsdouble.New(realistic(o))
	t.Cleanup(d.Close)
	opts := ec2.Options{
		AMIs:     ssm.NewFromConfig(d.Config()),
		DetectIP: func(context.Context) (netip.Addr, error) { return runnerIP, nil },
		Timing:   fastTiming(),
		Log:      slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	for _, e := range edit {
		e(&opts)
	}
	return &env{d: d, hosts: ec2.NewFromConfig(d.Config(), opts)}
}

func testRun(id string) runtag.Run {
	return runtag.Run{ID: id, App: "app", GitSHA: "abc1234", CreatedAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), Lifetime: 30 * time.Minute}
}
