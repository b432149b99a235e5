// Package awslab is AWS on this machine for end-to-end tests of the AWS target: the AWS double
// (internal/awsdouble) whose RunInstances boots a netns lab instance (internal/testenv/lab)
// configured from the instance's cloud-config user-data, and one real OCI registry standing in
// for ECR's registry endpoint, reachable at the same 127.0.0.1:P from the Dagger engine (which
// pushes), from every instance's dockerd (which pulls; docker treats loopback registries as
// insecure) and from the host (for inspection). Pushes and ECR's API agree: what the engine
// pushes is what DescribeImages lists, and a pull of a digest ECR no longer holds fails. Each
// load balancer the double creates is served by HAProxy in a namespace of its own, at the DNS
// name the double hands out, and the double's target health is HAProxy's (balancer.go).
//
// Traffic stays on this machine: loopback and the labs' own namespaces. It needs root; in CI
// (CI=true) a missing component fails the test instead of skipping it.
//
//	l := awslab.Start(t, awslab.Options{})
//	l.Setenv(t)                      // AWS_ENDPOINT_URL, dummy credentials, region
//	args := append(l.Args(), ...)    // --target aws --ssh-cidr ... --remote-user ...
//	... run the CLI ...
//	l.AssertNothingLeft(t)
package awslab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/testenv"
	"github.com/deploydrill/deploydrill/internal/testenv/lab"
)

// Options are a lab's switches; zero values take the defaults noted.
type Options struct {
	// Double configures the AWS double (pending/shutting-down describes, throttling, faults...).
	// RegistryEndpoint and RegistryPassword are the lab's own and are overwritten.
	Double awsdouble.Options
	// RemoteUser is the account the drill logs in as (--remote-user); default "drill", a
	// non-default user, so user-data's users[] entry is what creates it. As on the AMI, the
	// default user "ubuntu" has passwordless sudo, a named user only when its users[] entry
	// grants a NOPASSWD rule (faults that need root fail without it).
	RemoteUser string
	// WithoutSudo boots instances whose remote user has no passwordless sudo, whatever the
	// user-data asks for (an AMI or user set up otherwise).
	WithoutSudo bool
	// FirstIndex is the first lab index tried (each instance takes one, up to lab.MaxIndex);
	// default 10. Packages whose tests may run at the same time should start apart.
	FirstIndex int
	// WithoutEngine serves the registry on the host and the instances only: for tests that push
	// from this process rather than from the Dagger engine.
	WithoutEngine bool

	// SSHRefusedFor keeps every new instance refusing SSH connections (TCP reset, as a booting
	// host does before sshd listens) for this long after RunInstances returns.
	SSHRefusedFor time.Duration
	// WrongHostKey makes sshd present a freshly generated host key instead of the one in
	// user-data: an impostor, or a man in the middle.
	WrongHostKey bool
	// FailPulls makes the registry answer "manifest unknown" to every manifest request from an
	// instance, so `docker pull` fails there (login still works).
	FailPulls bool
}

// Region is the region the lab's double answers for.
const Region = "eu-west-1"

// SSHCIDR holds every lab instance's address, and the host ends that connect to them.
const SSHCIDR = "10.213.0.0/16"

// Lab is a running AWS stand-in. Start makes one; t.Cleanup removes it.
type Lab struct {
	// Double serves EC2, ECR and SSM: inspect it, inject faults. Its hooks (OnRunInstances,
	// AfterOp) are the lab's own; replacing them unplugs the instances.
	Double *awsdouble.Double

	t        testing.TB
	opts     Options
	registry *registry
	ctx      context.Context // ends at cleanup: bounds lab starts done inside RunInstances
	cancel   context.CancelFunc
	dir      string

	mu        sync.Mutex
	instances []*Instance // in launch order

	balancers balancerSet // the load balancers' data planes (balancer.go)

	logMu  sync.Mutex
	closed bool // the test is ending: drop log lines from lingering goroutines
}

// Start brings the lab up. Everything is removed by t.Cleanup, also when the test fails; lab
// instances left by a killed earlier run are removed first.
func Start(t testing.TB, o Options) *Lab {
	t.Helper()
	lab.Require(t)
	if o.RemoteUser == "" {
		o.RemoteUser = "drill"
	}
	if o.FirstIndex == 0 {
		o.FirstIndex = 10
	}
	if o.Double.Region == "" {
		o.Double.Region = Region
	}
	if o.Double.AccountID == "" {
		o.Double.AccountID = "123456789012"
	}
	engineNetns := ""
	if !o.WithoutEngine {
		engineNetns = fmt.Sprintf("/proc/%d/ns/net", testenv.EnginePID(t))
	}
	sweepStaleOnce(t)

	l := &Lab{t: t, opts: o, dir: t.TempDir()}
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(t.Context()))
	password := randomHex(24)
	reg, err := newRegistry(engineNetns, password, o.FailPulls)
	if err != nil {
		l.cancel()
		t.Fatalf("awslab: %v", err)
	}
	l.registry = reg
	dopts := o.Double
	dopts.RegistryEndpoint = "https://" + reg.host()
	dopts.RegistryPassword = password
	l.Double = awsdouble.New(dopts)
	l.Double.OnRunInstances = l.boot
	l.Double.AfterOp = l.afterOp
	l.plugBalancers()
	reg.attach(l.Double, dopts.AccountID)
	t.Cleanup(l.close)
	t.Logf("awslab: AWS double at %s, registry at %s (engine: %v)", l.Double.URL, reg.host(), engineNetns != "")
	return l
}

// RegistryHost is host:port of the registry, the same for the engine, the instances and the host.
func (l *Lab) RegistryHost() string { return l.registry.host() }

// RegistryPassword is the password inside the double's ECR authorization token.
func (l *Lab) RegistryPassword() string { return l.Double.RegistryPassword() }

// RemoteUser is the account instances are told to create.
func (l *Lab) RemoteUser() string { return l.opts.RemoteUser }

// Env is the environment that points the CLI (and any AWS SDK client) at the double, with
// dummy credentials and no shared config, so nothing on this machine leaks in.
func (l *Lab) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + l.Double.URL,
		"AWS_ACCESS_KEY_ID=AKIAAWSLABEXAMPLE000",
		"AWS_SECRET_ACCESS_KEY=awslab-not-a-secret",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_REGION=" + l.Double.Region(),
		"AWS_DEFAULT_REGION=" + l.Double.Region(),
		"AWS_CONFIG_FILE=" + filepath.Join(l.dir, "aws-config-absent"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(l.dir, "aws-credentials-absent"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Setenv applies Env to the test process (for in-process runs of the CLI); the test then
// cannot be parallel.
func (l *Lab) Setenv(t testing.TB) {
	for _, kv := range l.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Args are the drill flags the lab needs: the AWS target, SSH allowed from the lab's network
// (so no public-IP detection) and the remote user.
func (l *Lab) Args() []string {
	return []string{"--target", "aws", "--ssh-cidr", SSHCIDR, "--remote-user", l.opts.RemoteUser}
}

// Instances lists the instances booted so far, in launch order.
func (l *Lab) Instances() []*Instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Instance(nil), l.instances...)
}

// SSHRefusals counts the SSH connection attempts the instances refused while "booting"
// (Options.SSHRefusedFor): proof that the client met a refusing host and retried.
func (l *Lab) SSHRefusals() int {
	n := 0
	for _, in := range l.Instances() {
		n += in.Refused()
	}
	return n
}

func (l *Lab) logf(format string, args ...any) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	if !l.closed {
		l.t.Logf("awslab: "+format, args...)
	}
}

// close is the lab's cleanup: load balancers' data planes, instances (waiting for those
// already shutting down), registry, double, in that order.
func (l *Lab) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	errs = append(errs, l.closeBalancers(ctx))
	for _, in := range l.Instances() {
		if l.t.Failed() {
			l.t.Logf("awslab: instance %s (%s) logs:\n%s", in.ID, in.Name, in.logs())
		}
		errs = append(errs, in.shutdown(ctx))
	}
	l.cancel()
	errs = append(errs, l.registry.close(ctx))
	l.Double.Close()
	if err := errors.Join(errs...); err != nil {
		l.t.Errorf("awslab: cleanup: %v", err)
	}
	l.logMu.Lock()
	l.closed = true
	l.logMu.Unlock()
}

// errorf fails the test from any goroutine, unless it has ended (a lingering hook).
func (l *Lab) errorf(format string, args ...any) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	if !l.closed {
		l.t.Errorf("awslab: "+format, args...)
	}
}

// isClosed reports a lab whose cleanup has begun: hooks still called by the double do nothing.
func (l *Lab) isClosed() bool { return l.ctx.Err() != nil }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// listenSamePort opens a listener on 127.0.0.1:0 inside netns (or the host when netns is "")
// and one on the host's loopback at the same port, trying a few ports if the host's is taken.
func listenSamePort(netns string) (inNetns, onHost net.Listener, err error) {
	if netns == "" {
		onHost, err = net.Listen("tcp", "127.0.0.1:0")
		return nil, onHost, err
	}
	var last error
	for range 20 {
		inNetns, err = testenv.ListenInNetns(netns, "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen in %s: %w", netns, err)
		}
		port := inNetns.Addr().(*net.TCPAddr).Port
		onHost, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			return inNetns, onHost, nil
		}
		inNetns.Close()
		last = err
	}
	return nil, nil, fmt.Errorf("no port free both in %s and on the host: %w", netns, last)
}

// sameNamespace reports whether two /proc or /run/netns paths name the same namespace.
func sameNamespace(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}
