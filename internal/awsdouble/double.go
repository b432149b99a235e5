// Package awsdouble is an in-process stand-in for EC2, ECR and SSM that speaks their real wire
// protocols (EC2 query/XML, ECR and SSM JSON 1.1) to the real aws-sdk-go-v2 clients through
// BaseEndpoint. Its switches model what AWS does and simple emulators do not: instances stay
// pending and shutting-down for a while, new instance ids are briefly unknown, security groups
// stay in use after termination, calls get throttled, immutable tags refuse a re-push.
// See ../../../shared/notes/aws-behaviours.md for the behaviours it follows.
package awsdouble

import (
	"context"
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options are the double's switches. Zero values take the defaults noted on each field.
type Options struct {
	Region    string // default eu-west-1
	AccountID string // default 123456789012
	// Seed makes throttling reproducible.
	Seed uint64
	// Throttle is the fraction of calls answered with RequestLimitExceeded (EC2, HTTP 503) or
	// ThrottlingException (ECR, SSM); the SDK's retryer is expected to absorb them.
	Throttle float64
	// PendingDescribes is how many DescribeInstances answers show a new instance as pending.
	PendingDescribes int
	// ShuttingDownDescribes is how many DescribeInstances answers show shutting-down before terminated.
	ShuttingDownDescribes int
	// NotFoundCalls is how many DescribeInstances/TerminateInstances calls naming a new instance
	// id fail with InvalidInstanceID.NotFound, and how many filtered listings leave it out
	// (eventual consistency).
	NotFoundCalls int
	// DependencyAttempts is how many DeleteSecurityGroup attempts still fail with
	// DependencyViolation after the last instance using the group has terminated.
	DependencyAttempts int
	// PageSize caps list answers (DescribeInstances when MaxResults is set, ECR lists); default 100.
	PageSize int
	// NoDefaultVPC models an account whose default VPC was deleted.
	NoDefaultVPC bool
	// RegistryEndpoint is GetAuthorizationToken's proxyEndpoint and the host of repository URIs;
	// default https://<account>.dkr.ecr.<region>.amazonaws.com. Point it at a real OCI registry.
	RegistryEndpoint string
	// RegistryPassword is the password inside the authorization token; default a random string.
	RegistryPassword string
	// Now is the double's clock; default time.Now.
	Now func() time.Time
	// ELBv2 are the switches of the Elastic Load Balancing v2 part (see elbv2.go).
	ELBv2 ELBv2Options
}

// Fault makes calls to one operation fail with an AWS error.
type Fault struct {
	Op      string // "ec2:RunInstances", "ecr:PutImage", "ssm:GetParameter"
	Skip    int    // let this many calls through first
	Times   int    // fail this many calls after that; 0 means every call
	Code    string // AWS error code, e.g. "UnauthorizedOperation"
	Status  int    // HTTP status; default 400
	Message string
}

// Double is the running stand-in. Set the hooks before the first request.
type Double struct {
	URL string
	// S3 serves the S3 REST API (path-style) on the same endpoint: the drill history's store.
	S3 *S3

	// OnRunInstances decides the public IP of a new instance from its id and decoded user-data.
	// An error fails RunInstances with InsufficientInstanceCapacity. Default: a loopback address.
	OnRunInstances func(id string, userData []byte) (publicIP string, err error)
	// AfterOp runs after an operation was handled (changing the state or not) and before its
	// answer, success or error, is written: a test can cancel the client's context here and wait
	// on r.Context() so the answer is lost.
	AfterOp func(op string, r *http.Request)
	// LoadBalancerDNS decides a new load balancer's DNS name from its name, so that a lab can
	// point it at a real data plane. Default: a loopback address.
	LoadBalancerDNS func(name string) string
	// CheckTarget is the load balancers' health check of one target, called every interval
	// with a context bounded by the group's timeout; nil means healthy. Default: HTTPHealthCheck.
	CheckTarget func(ctx context.Context, c TargetCheck) error
	// AfterTargetChange runs (outside the double's lock) after a target group's targets
	// changed: registered, deregistered, drained, or their health or routing changed.
	AfterTargetChange func(targetGroupARN string)

	opts Options
	srv  *httptest.Server

	mu     sync.Mutex
	rng    *rand.Rand
	ops    []string
	faults []*faultState
	stalls []*stall
	closed chan struct{}
	seq    int

	vpcs      []*vpc
	subnets   []*subnet
	groups    map[string]*group
	keyPairs  map[string]*keyPair
	instances map[string]*instance
	volumes   map[string]*volume
	amis      []*ami
	tokens    map[string]string // RunInstances ClientToken -> instance id
	repos     map[string]*repository
	params    map[string]string
	elb       elbWorld
}

type faultState struct {
	Fault
	seen int
}

// New starts a double on a loopback port. Close it when done.
func New(o Options) *Double {
	if o.Region == "" {
		o.Region = "eu-west-1"
	}
	if o.AccountID == "" {
		o.AccountID = "123456789012"
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RegistryEndpoint == "" {
		o.RegistryEndpoint = "https://" + o.AccountID + ".dkr.ecr." + o.Region + ".amazonaws.com"
	}
	d := &Double{
		opts:      o,
		rng:       rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)),
		groups:    map[string]*group{},
		keyPairs:  map[string]*keyPair{},
		instances: map[string]*instance{},
		volumes:   map[string]*volume{},
		tokens:    map[string]string{},
		repos:     map[string]*repository{},
		params:    map[string]string{},
		closed:    make(chan struct{}),
		S3:        NewS3(),
	}
	if d.opts.RegistryPassword == "" {
		b := make([]byte, 24)
		for i := range b {
			b[i] = byte(d.rng.UintN(256))
		}
		d.opts.RegistryPassword = base64.RawURLEncoding.EncodeToString(b)
	}
	d.seedWorld()
	d.initELBv2()
	d.srv = httptest.NewServer(d)
	d.URL = d.srv.URL
	return d
}

// Close releases every stalled call and stops the server.
func (d *Double) Close() {
	d.mu.Lock()
	select {
	case <-d.closed:
	default:
		close(d.closed)
	}
	d.mu.Unlock()
	d.srv.Close()
}

type stall struct {
	op       string
	released chan struct{}
	stalled  chan string
}

// Stall makes calls to op ("ec2:TerminateInstances"; "*" for every call) hang before they are
// handled, as an API that stopped answering does, until release is called (then they are
// handled as usual) or the client gives up (then nothing happens and nothing is answered). The
// returned channel receives each call's op as it starts to hang (it never blocks the double:
// calls beyond its buffer of 100 are not reported). Release is idempotent.
func (d *Double) Stall(op string) (stalled <-chan string, release func()) {
	s := &stall{op: op, released: make(chan struct{}), stalled: make(chan string, 100)}
	d.mu.Lock()
	d.stalls = append(d.stalls, s)
	d.mu.Unlock()
	var once sync.Once
	return s.stalled, func() {
		once.Do(func() {
			d.mu.Lock()
			d.stalls = slices.DeleteFunc(d.stalls, func(x *stall) bool { return x == s })
			d.mu.Unlock()
			close(s.released)
		})
	}
}

// hang holds a call while a stall covers op; it reports false when the client gave up.
func (d *Double) hang(op string, r *http.Request) bool {
	for {
		d.mu.Lock()
		i := slices.IndexFunc(d.stalls, func(s *stall) bool { return s.op == op || s.op == "*" })
		var s *stall
		if i >= 0 {
			s = d.stalls[i]
		}
		d.mu.Unlock()
		if s == nil {
			return true
		}
		select {
		case s.stalled <- op:
		default:
		}
		select {
		case <-s.released: // look again: another stall may cover op
		case <-d.closed:
			return false
		case <-r.Context().Done():
			return false
		}
	}
}

// Region is the region the double answers for.
func (d *Double) Region() string { return d.opts.Region }

// Inject adds a fault; faults on the same operation apply in the order added.
func (d *Double) Inject(f Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f.Status == 0 {
		f.Status = http.StatusBadRequest
	}
	if f.Message == "" {
		f.Message = "injected fault"
	}
	d.faults = append(d.faults, &faultState{Fault: f})
}

// ClearFaults removes every injected fault.
func (d *Double) ClearFaults() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = nil
}

// Operations lists every operation served so far, in order, as "service:Operation".
func (d *Double) Operations() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.ops)
}

// ServeHTTP routes by X-Amz-Target (ECR, SSM), a path below / (S3, path-style), the signing
// service (Elastic Load Balancing v2, a query API like EC2's), or the query Action (EC2).
func (d *Double) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	switch {
	case target == "" && r.URL.Path != "/" && r.URL.Path != "":
		d.S3.ServeHTTP(w, r)
	case strings.HasPrefix(target, ecrTargetPrefix):
		d.serveJSON(w, r, "ecr", strings.TrimPrefix(target, ecrTargetPrefix), ecrHandlers)
	case strings.HasPrefix(target, ssmTargetPrefix):
		d.serveJSON(w, r, "ssm", strings.TrimPrefix(target, ssmTargetPrefix), ssmHandlers)
	case target == "" && isELBv2(r):
		d.serveELBv2(w, r)
	case target == "":
		d.serveEC2(w, r)
	default:
		writeJSONError(w, d.requestID(), &apiError{Status: http.StatusBadRequest, Code: "UnknownOperationException", Message: "unknown target " + target})
	}
}

// admit records the call and decides whether it is throttled or hit by a fault.
func (d *Double) admit(op string) *apiError {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ops = append(d.ops, op)
	if d.opts.Throttle > 0 && d.rng.Float64() < d.opts.Throttle {
		if strings.HasPrefix(op, "ec2:") {
			return &apiError{Status: http.StatusServiceUnavailable, Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
		}
		return &apiError{Status: http.StatusBadRequest, Code: "ThrottlingException", Message: "Rate exceeded"}
	}
	for _, f := range d.faults {
		if f.Op != op {
			continue
		}
		f.seen++
		if f.seen > f.Skip && (f.Times == 0 || f.seen <= f.Skip+f.Times) {
			return &apiError{Status: f.Status, Code: f.Code, Message: f.Message}
		}
	}
	return nil
}

func (d *Double) after(op string, r *http.Request) {
	if d.AfterOp != nil {
		d.AfterOp(op, r)
	}
}

// nextID returns prefix-<17 hex digits>, unique within the double. Callers hold d.mu.
func (d *Double) nextID(prefix string) string {
	d.seq++
	return prefix + "-" + strings.Repeat("0", 9) + hex8(d.seq)
}

func hex8(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b)
}

func (d *Double) requestID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	return "req-" + hex8(d.seq)
}
