// Package probe checks an app's /health endpoint and turns each check into a Sample.
//
// A probe is healthy when the endpoint answers 200 with {"status":"ok","version":V} and V is the
// version the caller expects. Every probe opens a fresh connection (no keep-alive reuse), so a
// backend that has just been stopped or replaced is seen as it is now, never through a pooled
// connection to the old one.
//
//	p := probe.New(500 * time.Millisecond)
//	s := p.Probe(ctx, "http://127.0.0.1:8080", "a1b2c3d")
//	if !s.OK() {
//		fmt.Println(s.Outcome, s.Err)
//	}
package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Outcome classifies one probe.
type Outcome string

const (
	OK           Outcome = "ok"            // 200, status "ok", the expected version
	HTTPError    Outcome = "http_error"    // a status other than 200, or no usable response
	Reset        Outcome = "reset"         // the connection was reset or closed before an answer (a crash)
	Refused      Outcome = "refused"       // nothing listens: connection refused
	Timeout      Outcome = "timeout"       // no complete answer within the probe's timeout
	WrongVersion Outcome = "wrong_version" // healthy, but another version answers
	BadBody      Outcome = "bad_body"      // 200 whose body is not {"status":"ok",...}
	Slow         Outcome = "slow"          // healthy, but slower than the drill's latency SLO (the drill sets it)
)

// Outcomes lists every outcome, healthy first.
var Outcomes = []Outcome{OK, HTTPError, Refused, Reset, Timeout, WrongVersion, BadBody, Slow}

// Sample is the result of one probe.
type Sample struct {
	At      time.Time     // when the probe started
	Outcome Outcome       //
	Latency time.Duration // from sending the request to having read the whole answer (or failing)
	Version string        // the version /health reported; "" when there was none
	Status  int           // HTTP status; 0 when no response arrived
	Err     string        // why the probe was not OK; "" when it was
}

// OK reports whether the probe was healthy with the expected version.
func (s Sample) OK() bool { return s.Outcome == OK }

// Observed is when the probe's verdict became known: its start plus its latency.
func (s Sample) Observed() time.Time { return s.At.Add(s.Latency) }

// DefaultTimeout bounds one probe when New is given zero.
const DefaultTimeout = time.Second

// maxBody bounds what a probe reads: /health answers are a few dozen bytes.
const maxBody = 64 << 10

// Prober probes /health over HTTP. Safe for concurrent use.
type Prober struct {
	timeout time.Duration
	path    string
	client  *http.Client
	now     func() time.Time
}

// New returns a Prober whose every request is bounded by timeout (DefaultTimeout when zero).
func New(timeout time.Duration) *Prober {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	transport := &http.Transport{
		Proxy:              nil, // a health check goes straight to the target, whatever HTTP_PROXY says
		DialContext:        (&net.Dialer{}).DialContext,
		DisableKeepAlives:  true,
		DisableCompression: true,
		MaxIdleConns:       -1,
	}
	return &Prober{
		timeout: timeout,
		path:    "/health",
		client: &http.Client{
			Transport: transport,
			// A redirect is an answer of its own: /health must answer in place.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}
}

// Timeout is the bound on one probe.
func (p *Prober) Timeout() time.Duration { return p.timeout }

// Probe checks endpoint's /health once and expects want as the version ("" accepts any).
// It never returns an error: every failure is a Sample with an Outcome and Err.
func (p *Prober) Probe(ctx context.Context, endpoint, want string) Sample {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	s := Sample{At: p.now()}
	s.Outcome, s.Status, s.Version, s.Err = p.check(ctx, strings.TrimRight(endpoint, "/")+p.path, want)
	s.Latency = p.now().Sub(s.At)
	return s
}

func (p *Prober) check(ctx context.Context, url, want string) (Outcome, int, string, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return HTTPError, 0, "", fmt.Sprintf("build request: %v", err)
	}
	req.Close = true
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "deploydrill-probe")
	resp, err := p.client.Do(req)
	if err != nil {
		return transportOutcome(ctx, err), 0, "", err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return transportOutcome(ctx, err), resp.StatusCode, "", fmt.Sprintf("read body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return HTTPError, resp.StatusCode, "", fmt.Sprintf("status %d: %s", resp.StatusCode, snippet(body))
	}
	var health struct {
		Status  *string `json:"status"`
		Version *string `json:"version"`
	}
	if err := json.Unmarshal(body, &health); err != nil {
		return BadBody, resp.StatusCode, "", fmt.Sprintf("decode body %q: %v", snippet(body), err)
	}
	version := ""
	if health.Version != nil {
		version = *health.Version
	}
	switch {
	case health.Status == nil:
		return BadBody, resp.StatusCode, version, fmt.Sprintf("no status in body %q", snippet(body))
	case *health.Status != "ok":
		return BadBody, resp.StatusCode, version, fmt.Sprintf("status %q, want \"ok\"", *health.Status)
	case health.Version == nil:
		return BadBody, resp.StatusCode, "", fmt.Sprintf("no version in body %q", snippet(body))
	case want != "" && version != want:
		return WrongVersion, resp.StatusCode, version, fmt.Sprintf("version %q, want %q", version, want)
	}
	return OK, resp.StatusCode, version, ""
}

// transportOutcome tells a timeout, a refusal and a reset apart from other transport failures.
func transportOutcome(ctx context.Context, err error) Outcome {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Timeout
	}
	return Classify(err)
}

// Classify names a transport error's outcome: timeout, refused, reset, else http_error. The
// load generator classifies users' failed requests with it too.
func Classify(err error) Outcome {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return Timeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return Reset
	}
	return HTTPError
}

// snippet is the start of a body, printable, for error messages.
func snippet(body []byte) string {
	const limit = 120
	s := strings.ToValidUTF8(string(body), "?")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "..."
	}
	return s
}
