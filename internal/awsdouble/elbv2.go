package awsdouble

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The ELBv2 part of the double speaks Elastic Load Balancing's query protocol (version
// 2015-12-01): a form-encoded POST like EC2's, told apart by the service name the SDK signs
// with ("elasticloadbalancing" in the Authorization header's credential scope), lists as
// Name.member.N, and XML answers <OpResponse><OpResult>..</OpResult><ResponseMetadata>..
// in its own namespace, errors as <ErrorResponse><Error><Type/><Code/><Message/></Error>.
// The shapes follow the SDK's request and response snapshots (service/elasticloadbalancingv2
// request_snapshot/, response_snapshot/).
//
// What it models, beyond storing resources:
//   - a load balancer is provisioning for ELBv2Options.Provisioning, then active; a deleted one
//     still shows (active) for ELBv2Options.Deleting, then DescribeLoadBalancers says
//     LoadBalancerNotFound; its listeners go with it;
//   - a target group used by a listener cannot be deleted (ResourceInUse), nor for
//     ELBv2Options.InUseAttempts attempts after its load balancer went;
//   - the security groups of a live load balancer cannot be deleted (DependencyViolation), and
//     stay in use for Options.DependencyAttempts attempts after it went;
//   - targets: unused while no listener of an active load balancer forwards to their group,
//     initial, then healthy or unhealthy by real health checks (Double.CheckTarget, every
//     interval, with the group's thresholds and timeout), draining for the deregistration
//     delay after DeregisterTargets, then gone (unused, Target.NotRegistered, when asked for);
//   - creates are idempotent as on AWS: the same name with the same settings returns the
//     existing resource, with other settings it is a Duplicate... error.
//
// Delays run on the real clock; ELBv2Options.Second scales the seconds a target group is
// configured in, so tests run a 5 s interval in 5 ms.

const elbNamespace = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

// ELBv2Options are the switches of the load balancer part. Zero values take the defaults noted.
type ELBv2Options struct {
	// Second is how long one second of a target group's settings (health-check interval and
	// timeout, deregistration delay) lasts; default time.Second.
	Second time.Duration
	// Provisioning is how long a new load balancer stays provisioning; default 100ms (AWS:
	// a few minutes). Negative means active at once.
	Provisioning time.Duration
	// Deleting is how long a deleted load balancer still shows in DescribeLoadBalancers;
	// default 0.
	Deleting time.Duration
	// InUseAttempts is how many DeleteTargetGroup attempts still fail with ResourceInUse
	// after the last load balancer using the group was deleted.
	InUseAttempts int
}

func (o ELBv2Options) withDefaults() ELBv2Options {
	if o.Second <= 0 {
		o.Second = time.Second
	}
	if o.Provisioning == 0 {
		o.Provisioning = 100 * time.Millisecond
	}
	if o.Provisioning < 0 {
		o.Provisioning = 0
	}
	return o
}

// TargetCheck is one health check the load balancer makes of a target.
type TargetCheck struct {
	TargetGroupARN, InstanceID string
	// Address is the instance's public IP: the double's stand-in for the private address an
	// ALB checks (the default OnRunInstances hands out loopback addresses).
	Address string
	Port    int
	Path    string
	Matcher string        // the HTTP codes that count as healthy: "200", "200-299", "200,302"
	Timeout time.Duration // the group's timeout, scaled by ELBv2Options.Second
}

// elbWorld is the load balancer part's state; the Double's mutex guards it.
type elbWorld struct {
	opts      ELBv2Options
	lbs       map[string]*loadBalancer // by ARN
	groups    map[string]*targetGroup  // by ARN
	listeners map[string]*listener     // by ARN
}

func (d *Double) initELBv2() {
	d.elb = elbWorld{opts: d.opts.ELBv2.withDefaults(), lbs: map[string]*loadBalancer{},
		groups: map[string]*targetGroup{}, listeners: map[string]*listener{}}
}

// isELBv2 reports a request signed for Elastic Load Balancing: its Authorization header's
// credential scope (AKID/DATE/REGION/SERVICE/aws4_request) names the service.
func isELBv2(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Authorization"), "/elasticloadbalancing/aws4_request")
}

type elbHandler func(d *Double, f form) (any, *apiError)

var elbHandlers = map[string]elbHandler{
	"CreateLoadBalancer":          (*Double).createLoadBalancer,
	"DescribeLoadBalancers":       (*Double).describeLoadBalancers,
	"DeleteLoadBalancer":          (*Double).deleteLoadBalancer,
	"CreateTargetGroup":           (*Double).createTargetGroup,
	"DescribeTargetGroups":        (*Double).describeTargetGroups,
	"ModifyTargetGroupAttributes": (*Double).modifyTargetGroupAttributes,
	"DeleteTargetGroup":           (*Double).deleteTargetGroup,
	"CreateListener":              (*Double).createListener,
	"DescribeListeners":           (*Double).describeListeners,
	"DeleteListener":              (*Double).deleteListener,
	"RegisterTargets":             (*Double).registerTargets,
	"DeregisterTargets":           (*Double).deregisterTargets,
	"DescribeTargetHealth":        (*Double).describeTargetHealth,
	"AddTags":                     (*Double).addTags,
	"DescribeTags":                (*Double).describeTags,
}

func (d *Double) serveELBv2(w http.ResponseWriter, r *http.Request) {
	reqID := d.requestID()
	if err := r.ParseForm(); err != nil {
		writeELBError(w, reqID, errorf("MalformedQueryString", "%v", err))
		return
	}
	action := r.PostForm.Get("Action")
	h, ok := elbHandlers[action]
	if !ok {
		writeELBError(w, reqID, errorf("InvalidAction", "Could not find operation %s for version 2015-12-01", action))
		return
	}
	op := "elasticloadbalancing:" + action
	if !d.hang(op, r) {
		return
	}
	if e := d.admit(op); e != nil {
		if e.Code == "ThrottlingException" && e.Message == "Rate exceeded" { // admit's throttling: ELB says Throttling
			e.Code = "Throttling"
		}
		writeELBError(w, reqID, e)
		return
	}
	if v := r.PostForm.Get("Version"); v != "2015-12-01" {
		writeELBError(w, reqID, errorf("InvalidParameterValue", "unsupported API version %q", v))
		return
	}
	result, e := h(d, form{v: r.PostForm})
	d.after(op, r)
	d.notifyTargets()
	if e != nil {
		writeELBError(w, reqID, e)
		return
	}
	if result == nil {
		result = struct{}{}
	}
	var body bytes.Buffer
	body.WriteString(xml.Header)
	fmt.Fprintf(&body, `<%sResponse xmlns="%s">`, action, elbNamespace)
	if err := xml.NewEncoder(&body).EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
		writeELBError(w, reqID, &apiError{Status: http.StatusInternalServerError, Code: "InternalFailure", Message: err.Error()})
		return
	}
	fmt.Fprintf(&body, `<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, reqID, action)
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(body.Bytes())
}

// writeELBError writes Elastic Load Balancing's error document.
func writeELBError(w http.ResponseWriter, requestID string, e *apiError) {
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	doc := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}{Xmlns: elbNamespace, Type: typ, Code: e.Code, Message: e.Message, RequestID: requestID}
	body, _ := xml.Marshal(doc)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

// Elastic Load Balancing's names: 1-32 letters, digits and hyphens, no hyphen at either end;
// a load balancer's may not begin with "internal-".
var elbNamePattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

func validationError(format string, args ...any) *apiError {
	return errorf("ValidationError", format, args...)
}

type xELBTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func xELBTags(tags map[string]string) []xELBTag {
	var out []xELBTag
	for _, t := range xTags(tags) {
		out = append(out, xELBTag(t))
	}
	return out
}

// elbTags reads Tags.member.N.Key/Value: at most 50, no aws: prefix, no key twice.
func (f form) elbTags() (map[string]string, *apiError) {
	tags := map[string]string{}
	items := f.items("Tags.member")
	if len(items) > 50 {
		return nil, errorf("TooManyTags", "You have reached the limit on the number of tags you can assign")
	}
	for _, t := range items {
		k := t.get("Key")
		if k == "" || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, validationError("tag key %q is not allowed", k)
		}
		if _, dup := tags[k]; dup {
			return nil, errorf("DuplicateTagKeys", "A tag key was specified more than once: %s", k)
		}
		tags[k] = t.get("Value")
	}
	return tags, nil
}

// page cuts a listing by Marker and PageSize (at most 400, and at most Options.PageSize).
func page[T any](d *Double, f form, all []T) ([]T, string, *apiError) {
	size := 400
	if f.has("PageSize") {
		size = f.int("PageSize", 0)
		if size < 1 || size > 400 {
			return nil, "", validationError("PageSize must be between 1 and 400")
		}
	}
	size = min(size, d.opts.PageSize)
	start := 0
	if m := f.get("Marker"); m != "" {
		start = f.int("Marker", -1)
		if start < 0 || start > len(all) {
			return nil, "", validationError("Invalid marker %q", m)
		}
	}
	end := min(start+size, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[start:end], next, nil
}

// notifyTargets runs AfterTargetChange once for every target group whose targets changed.
func (d *Double) notifyTargets() {
	d.mu.Lock()
	var changed []string
	for _, g := range sortedValues(d.elb.groups, func(g *targetGroup) string { return g.arn }) {
		if g.changed {
			g.changed = false
			changed = append(changed, g.arn)
		}
	}
	d.mu.Unlock()
	if d.AfterTargetChange == nil {
		return
	}
	for _, arn := range changed {
		d.AfterTargetChange(arn)
	}
}

// closing is a context that ends when the double closes.
func (d *Double) closing() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-d.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
