package awsdouble

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type targetGroup struct {
	arn, name, protocol, vpcID, path, matcher, healthPort string
	port, interval, timeout, healthy, unhealthy           int
	attrs                                                 map[string]string
	tags                                                  map[string]string
	targets                                               map[string]*target // by id:port
	// heldBy is the deleted load balancer that still used the group; inUseLeft counts the
	// DeleteTargetGroup attempts refused after it went.
	heldBy    string
	inUseLeft int
	changed   bool // for AfterTargetChange
}

type target struct {
	id   string
	port int
	// health is what the checks concluded: initial, healthy or unhealthy, with AWS's reason.
	health, reason, desc string
	okRun, failRun       int
	draining             bool
	gen                  int // bumped when deregistered or replaced: stale timers and loops stop
	stop                 chan struct{}
	halted               bool
}

// halt stops the target's health checks. Callers hold d.mu.
func (t *target) halt() {
	t.gen++
	if !t.halted {
		t.halted = true
		close(t.stop)
	}
}

func (t *target) key() string { return t.id + ":" + strconv.Itoa(t.port) }

// Target group attributes the double knows, with AWS's defaults for an HTTP instance group.
var targetGroupAttributes = map[string]string{
	"deregistration_delay.timeout_seconds": "300",
	"stickiness.enabled":                   "false",
	"stickiness.type":                      "lb_cookie",
	"load_balancing.algorithm.type":        "round_robin",
	"slow_start.duration_seconds":          "0",
}

func (g *targetGroup) deregistrationDelay() int {
	n, _ := strconv.Atoi(g.attrs["deregistration_delay.timeout_seconds"])
	return n
}

func tgNotFound(what string) *apiError {
	return errorf("TargetGroupNotFound", "Target groups %s not found", what)
}

func (d *Double) createTargetGroup(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := f.get("Name")
	if !elbNamePattern.MatchString(name) {
		return nil, validationError("Target group name '%s' must be up to 32 letters, digits and hyphens, not beginning or ending with a hyphen", name)
	}
	if tt := orDefault(f.get("TargetType"), "instance"); tt != "instance" {
		return nil, validationError("this double models instance targets only, not %q", tt)
	}
	g := &targetGroup{name: name, protocol: f.get("Protocol"), vpcID: f.get("VpcId"), port: f.int("Port", 0),
		path: orDefault(f.get("HealthCheckPath"), "/"), matcher: orDefault(f.sub("Matcher").get("HttpCode"), "200"),
		healthPort: orDefault(f.get("HealthCheckPort"), "traffic-port"),
		interval:   f.int("HealthCheckIntervalSeconds", 30), timeout: f.int("HealthCheckTimeoutSeconds", 5),
		healthy: f.int("HealthyThresholdCount", 5), unhealthy: f.int("UnhealthyThresholdCount", 2)}
	switch {
	case g.protocol != "HTTP":
		return nil, validationError("this double models HTTP target groups only, not %q", g.protocol)
	case g.port < 1 || g.port > 65535:
		return nil, validationError("Port must be between 1 and 65535")
	case g.vpcID == "":
		return nil, validationError("A VPC ID must be specified for target groups of type 'instance'")
	case d.vpc(g.vpcID) == nil:
		return nil, validationError("The VPC ID '%s' is not found", g.vpcID)
	case f.get("HealthCheckProtocol") != "" && f.get("HealthCheckProtocol") != "HTTP":
		return nil, validationError("this double checks health over HTTP only, not %q", f.get("HealthCheckProtocol"))
	case g.interval < 5 || g.interval > 300:
		return nil, validationError("Health check interval must be between 5 and 300 seconds")
	case g.timeout < 2 || g.timeout > 120:
		return nil, validationError("Health check timeout must be between 2 and 120 seconds")
	case g.timeout >= g.interval:
		return nil, validationError("Health check interval must be greater than the timeout.")
	case g.healthy < 2 || g.healthy > 10 || g.unhealthy < 2 || g.unhealthy > 10:
		return nil, validationError("Healthy and unhealthy threshold counts must be between 2 and 10")
	case !strings.HasPrefix(g.path, "/") || len(g.path) > 1024:
		return nil, validationError("Health check path must begin with '/' and be at most 1024 characters")
	}
	if _, err := codeMatcher(g.matcher); err != nil {
		return nil, validationError("Health check matcher HTTP code '%s' must be a code, a list or a range of codes between 200 and 499", g.matcher)
	}
	if g.healthPort != "traffic-port" {
		if p, err := strconv.Atoi(g.healthPort); err != nil || p < 1 || p > 65535 {
			return nil, validationError("Health check port '%s' is not valid", g.healthPort)
		}
	}
	tags, e := f.elbTags()
	if e != nil {
		return nil, e
	}
	for _, have := range d.elb.groups {
		if have.name != name {
			continue
		}
		// CreateTargetGroup is idempotent: the same settings return the existing group.
		if have.protocol == g.protocol && have.port == g.port && have.vpcID == g.vpcID && have.path == g.path &&
			have.matcher == g.matcher && have.healthPort == g.healthPort && have.interval == g.interval &&
			have.timeout == g.timeout && have.healthy == g.healthy && have.unhealthy == g.unhealthy {
			return tgAnswer(d.xTargetGroup(have)), nil
		}
		return nil, errorf("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
	}
	g.arn = "arn:aws:elasticloadbalancing:" + d.opts.Region + ":" + d.opts.AccountID + ":targetgroup/" + name + "/" + d.nextHex16()
	g.tags, g.targets, g.attrs = tags, map[string]*target{}, map[string]string{}
	for k, v := range targetGroupAttributes {
		g.attrs[k] = v
	}
	d.elb.groups[g.arn] = g
	return tgAnswer(d.xTargetGroup(g)), nil
}

type xTargetGroup struct {
	TargetGroupArn             string   `xml:"TargetGroupArn"`
	TargetGroupName            string   `xml:"TargetGroupName"`
	Protocol                   string   `xml:"Protocol"`
	Port                       int      `xml:"Port"`
	VpcId                      string   `xml:"VpcId"`
	HealthCheckProtocol        string   `xml:"HealthCheckProtocol"`
	HealthCheckPort            string   `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool     `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int      `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int      `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int      `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int      `xml:"UnhealthyThresholdCount"`
	HealthCheckPath            string   `xml:"HealthCheckPath"`
	HttpCode                   string   `xml:"Matcher>HttpCode"`
	LoadBalancerArns           []string `xml:"LoadBalancerArns>member"`
	TargetType                 string   `xml:"TargetType"`
	IpAddressType              string   `xml:"IpAddressType"`
}

func (d *Double) xTargetGroup(g *targetGroup) xTargetGroup {
	x := xTargetGroup{TargetGroupArn: g.arn, TargetGroupName: g.name, Protocol: g.protocol, Port: g.port, VpcId: g.vpcID,
		HealthCheckProtocol: "HTTP", HealthCheckPort: g.healthPort, HealthCheckEnabled: true,
		HealthCheckIntervalSeconds: g.interval, HealthCheckTimeoutSeconds: g.timeout, HealthyThresholdCount: g.healthy,
		UnhealthyThresholdCount: g.unhealthy, HealthCheckPath: g.path, HttpCode: g.matcher, TargetType: "instance", IpAddressType: "ipv4"}
	if lb := d.attachedLoadBalancer(g); lb != nil {
		x.LoadBalancerArns = []string{lb.arn}
	}
	return x
}

type tgList struct {
	TargetGroups []xTargetGroup `xml:"TargetGroups>member"`
	NextMarker   string         `xml:"NextMarker,omitempty"`
}

func tgAnswer(x xTargetGroup) *tgList { return &tgList{TargetGroups: []xTargetGroup{x}} }

// attachedLoadBalancer is the live load balancer a listener of which forwards to the group.
func (d *Double) attachedLoadBalancer(g *targetGroup) *loadBalancer {
	for _, l := range sortedValues(d.elb.listeners, func(l *listener) string { return l.arn }) {
		if l.tgARN == g.arn {
			if lb := d.elb.lbs[l.lbARN]; lb != nil && !lb.deleted() {
				return lb
			}
		}
	}
	return nil
}

func (d *Double) describeTargetGroups(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	arns, names, lbARN := f.list("TargetGroupArns.member"), f.list("Names.member"), f.get("LoadBalancerArn")
	all := sortedValues(d.elb.groups, func(g *targetGroup) string { return g.arn })
	var picked []*targetGroup
	switch {
	case len(arns) > 0:
		for _, arn := range arns {
			g := d.elb.groups[arn]
			if g == nil {
				return nil, tgNotFound("'" + arn + "'")
			}
			picked = append(picked, g)
		}
	case len(names) > 0:
		for _, name := range names {
			i := slices.IndexFunc(all, func(g *targetGroup) bool { return g.name == name })
			if i < 0 {
				return nil, tgNotFound("'" + name + "'")
			}
			picked = append(picked, all[i])
		}
	case lbARN != "":
		if lb := d.elb.lbs[lbARN]; lb == nil || lb.deleted() {
			return nil, lbNotFound("'" + lbARN + "'")
		}
		for _, g := range all {
			if lb := d.attachedLoadBalancer(g); lb != nil && lb.arn == lbARN {
				picked = append(picked, g)
			}
		}
	default:
		picked = all
	}
	cut, next, e := page(d, f, picked)
	if e != nil {
		return nil, e
	}
	out := &tgList{NextMarker: next}
	for _, g := range cut {
		out.TargetGroups = append(out.TargetGroups, d.xTargetGroup(g))
	}
	return out, nil
}

type xAttribute struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func (d *Double) modifyTargetGroupAttributes(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, e := d.groupOf(f)
	if e != nil {
		return nil, e
	}
	set := map[string]string{}
	for _, a := range f.items("Attributes.member") {
		k, v := a.get("Key"), a.get("Value")
		if _, ok := targetGroupAttributes[k]; !ok {
			return nil, errorf("InvalidConfigurationRequest", "Attribute key '%s' is not recognized", k)
		}
		if k == "deregistration_delay.timeout_seconds" {
			if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 3600 {
				return nil, errorf("InvalidConfigurationRequest", "Deregistration delay must be between 0 and 3600 seconds, got '%s'", v)
			}
		}
		set[k] = v
	}
	if len(set) == 0 {
		return nil, validationError("Attributes must name at least one attribute")
	}
	for k, v := range set {
		g.attrs[k] = v
	}
	out := &struct {
		Attributes []xAttribute `xml:"Attributes>member"`
	}{}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range g.attrs {
			if !yield(k) {
				return
			}
		}
	}) {
		out.Attributes = append(out.Attributes, xAttribute{k, g.attrs[k]})
	}
	return out, nil
}

// deleteTargetGroup refuses a group a listener forwards to, or whose load balancer went only
// a moment ago (ResourceInUse). Deleting a group that does not exist succeeds, as on AWS.
func (d *Double) deleteTargetGroup(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	arn := f.get("TargetGroupArn")
	g := d.elb.groups[arn]
	if g == nil {
		return nil, nil
	}
	inUse := errorf("ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
	for _, l := range d.elb.listeners {
		if l.tgARN == arn {
			return nil, inUse
		}
	}
	if g.heldBy != "" {
		return nil, inUse
	}
	if g.inUseLeft > 0 {
		g.inUseLeft--
		return nil, inUse
	}
	for _, t := range g.targets {
		t.halt()
	}
	delete(d.elb.groups, arn)
	return nil, nil
}

// targetsOf reads Targets.member.N.Id/Port, the port defaulting to the group's.
func targetsOf(f form, g *targetGroup) ([]target, *apiError) {
	var out []target
	for _, t := range f.items("Targets.member") {
		id, port := t.get("Id"), t.int("Port", g.port)
		if id == "" || port < 1 || port > 65535 {
			return nil, validationError("a target needs an instance id and a port between 1 and 65535")
		}
		out = append(out, target{id: id, port: port})
	}
	return out, nil
}

func (d *Double) registerTargets(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, e := d.groupOf(f)
	if e != nil {
		return nil, e
	}
	ts, e := targetsOf(f, g)
	if e != nil {
		return nil, e
	}
	if len(ts) == 0 {
		return nil, validationError("Targets must name at least one target")
	}
	for _, t := range ts {
		in := d.instances[t.id]
		switch {
		case in == nil:
			return nil, errorf("InvalidTarget", "The following targets are not valid instances: '%s'", t.id)
		case in.vpcID != g.vpcID:
			return nil, errorf("InvalidTarget", "The following targets are not in the target group VPC '%s': '%s'", g.vpcID, t.id)
		case in.state != statePending && in.state != stateRunning:
			return nil, errorf("InvalidTarget", "The following targets are not in a running state and cannot be registered: '%s'", t.id)
		}
	}
	for _, t := range ts {
		have := g.targets[t.key()]
		if have != nil && !have.draining {
			continue
		}
		if have != nil { // registering a draining target again: it starts over
			have.halt()
		}
		nt := &target{id: t.id, port: t.port, health: "initial", stop: make(chan struct{})}
		g.targets[nt.key()] = nt
		g.changed = true
		go d.checkHealth(g, nt, nt.gen)
	}
	return nil, nil
}

func (d *Double) deregisterTargets(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, e := d.groupOf(f)
	if e != nil {
		return nil, e
	}
	ts, e := targetsOf(f, g)
	if e != nil {
		return nil, e
	}
	for _, t := range ts {
		if d.instances[t.id] == nil {
			return nil, errorf("InvalidTarget", "The following targets are not valid instances: '%s'", t.id)
		}
	}
	for _, t := range ts {
		have := g.targets[t.key()]
		if have == nil || have.draining {
			continue
		}
		have.draining, g.changed = true, true
		have.halt()
		gen, delay := have.gen, time.Duration(g.deregistrationDelay())*d.elb.opts.Second
		if d.attachedLoadBalancer(g) == nil {
			delay = 0 // nothing sends it traffic: nothing to drain
		}
		time.AfterFunc(delay, func() {
			d.mu.Lock()
			if cur := g.targets[have.key()]; cur == have && have.gen == gen {
				delete(g.targets, have.key())
				g.changed = true
			}
			d.mu.Unlock()
			d.notifyTargets()
		})
	}
	return nil, nil
}

// targetState is what DescribeTargetHealth says of a registered target.
func (d *Double) targetState(g *targetGroup, t *target) (state, reason, desc string) {
	in := d.instances[t.id]
	lb := d.attachedLoadBalancer(g)
	switch {
	case t.draining:
		return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
	case in == nil || (in.state != statePending && in.state != stateRunning):
		return "unused", "Target.InvalidState", "Target is in the stopped or terminated state"
	case lb == nil:
		return "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
	case lb.state() == "provisioning" || in.state == statePending:
		return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
	case t.health == "initial":
		return "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
	}
	return t.health, t.reason, t.desc
}

type xTargetHealth struct {
	ID              string `xml:"Target>Id"`
	Port            int    `xml:"Target>Port"`
	HealthCheckPort string `xml:"HealthCheckPort"`
	State           string `xml:"TargetHealth>State"`
	Reason          string `xml:"TargetHealth>Reason,omitempty"`
	Description     string `xml:"TargetHealth>Description,omitempty"`
}

func (d *Double) describeTargetHealth(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	g, e := d.groupOf(f)
	if e != nil {
		return nil, e
	}
	asked, e := targetsOf(f, g)
	if e != nil {
		return nil, e
	}
	out := &struct {
		Descriptions []xTargetHealth `xml:"TargetHealthDescriptions>member"`
	}{}
	hcPort := func(port int) string {
		if g.healthPort == "traffic-port" {
			return strconv.Itoa(port)
		}
		return g.healthPort
	}
	if len(asked) == 0 {
		for _, t := range sortedValues(g.targets, (*target).key) {
			state, reason, desc := d.targetState(g, t)
			out.Descriptions = append(out.Descriptions, xTargetHealth{t.id, t.port, hcPort(t.port), state, reason, desc})
		}
		return out, nil
	}
	for _, a := range asked {
		if d.instances[a.id] == nil {
			return nil, errorf("InvalidTarget", "The following targets are not valid instances: '%s'", a.id)
		}
		x := xTargetHealth{a.id, a.port, hcPort(a.port), "unused", "Target.NotRegistered", "Target is not registered to the target group"}
		if t := g.targets[a.key()]; t != nil {
			x.State, x.Reason, x.Description = d.targetState(g, t)
		}
		out.Descriptions = append(out.Descriptions, x)
	}
	return out, nil
}

// ErrResponseCodeMismatch marks a health check answered with a code the matcher refuses.
var ErrResponseCodeMismatch = errors.New("health checks failed with these codes")

// checkHealth is the load balancer checking one target: every interval while a listener of an
// active load balancer forwards to the group and the instance runs, counting consecutive
// answers against the thresholds. It ends when the target is deregistered, its group deleted
// or the double closed.
func (d *Double) checkHealth(g *targetGroup, t *target, gen int) {
	ctx, cancel := d.closing()
	defer cancel()
	for {
		d.mu.Lock()
		if t.gen != gen {
			d.mu.Unlock()
			return
		}
		second := d.elb.opts.Second
		interval := time.Duration(g.interval) * second
		lb, in := d.attachedLoadBalancer(g), d.instances[t.id]
		checkable := lb != nil && lb.state() == "active" && in != nil && in.state == stateRunning
		check := TargetCheck{TargetGroupARN: g.arn, InstanceID: t.id, Port: t.port, Path: g.path, Matcher: g.matcher,
			Timeout: time.Duration(g.timeout) * second}
		if in != nil {
			check.Address = in.publicIP
		}
		if g.healthPort != "traffic-port" {
			check.Port, _ = strconv.Atoi(g.healthPort)
		}
		if !checkable && (t.health != "initial" || t.okRun+t.failRun > 0) {
			t.health, t.reason, t.desc, t.okRun, t.failRun = "initial", "", "", 0, 0
			g.changed = true
		}
		d.mu.Unlock()
		if checkable {
			err := d.runCheck(ctx, check)
			d.mu.Lock()
			if t.gen == gen {
				d.recordCheck(g, t, err)
			}
			d.mu.Unlock()
			d.notifyTargets()
		}
		if !checkable {
			interval = min(interval, second) // look again soon: the load balancer may be active now
		}
		timer := time.NewTimer(interval)
		select {
		case <-timer.C:
		case <-t.stop:
			timer.Stop()
			return
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

func (d *Double) runCheck(ctx context.Context, c TargetCheck) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if d.CheckTarget != nil {
		return d.CheckTarget(ctx, c)
	}
	return HTTPHealthCheck(ctx, c)
}

// recordCheck counts one check's outcome. Callers hold d.mu.
func (d *Double) recordCheck(g *targetGroup, t *target, err error) {
	if errors.Is(err, ErrCheckSkipped) { // the data plane judges (SetTargetHealth)
		return
	}
	if err == nil {
		t.okRun, t.failRun = t.okRun+1, 0
		if t.health != "healthy" && t.okRun >= g.healthy {
			t.health, t.reason, t.desc, g.changed = "healthy", "", "", true
		}
		return
	}
	t.okRun, t.failRun = 0, t.failRun+1
	if t.health == "unhealthy" || t.failRun < g.unhealthy {
		return
	}
	t.health, t.desc, g.changed = "unhealthy", err.Error(), true
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t.reason, t.desc = "Target.Timeout", "Request timed out"
	case errors.Is(err, ErrResponseCodeMismatch):
		t.reason = "Target.ResponseCodeMismatch"
	default:
		t.reason = "Target.FailedHealthChecks"
	}
}

var healthClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// HTTPHealthCheck is the default Double.CheckTarget: a GET of http://ADDRESS:PORT/PATH on a
// fresh connection, as an ALB makes it, healthy when the code matches.
func HTTPHealthCheck(ctx context.Context, c TargetCheck) error {
	if c.Address == "" {
		return fmt.Errorf("instance %s has no address", c.InstanceID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(c.Address, strconv.Itoa(c.Port))+c.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := healthClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	_ = resp.Body.Close()
	ok, _ := codeMatcher(c.Matcher)
	if ok == nil || !ok(resp.StatusCode) {
		return fmt.Errorf("%w: [%d]", ErrResponseCodeMismatch, resp.StatusCode)
	}
	return nil
}

// codeMatcher reads a matcher's HttpCode: "200", "200,302" or "200-299", codes 200 to 499.
func codeMatcher(spec string) (func(int) bool, error) {
	var ranges [][2]int
	for part := range strings.SplitSeq(spec, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		if a < 200 || b > 499 || a > b {
			return nil, fmt.Errorf("code %q out of range", part)
		}
		ranges = append(ranges, [2]int{a, b})
	}
	return func(code int) bool {
		return slices.ContainsFunc(ranges, func(r [2]int) bool { return code >= r[0] && code <= r[1] })
	}, nil
}

// groupOf is the target group the request names (caller holds d.mu).
func (d *Double) groupOf(f form) (*targetGroup, *apiError) {
	g := d.elb.groups[f.get("TargetGroupArn")]
	if g == nil {
		return nil, tgNotFound("'" + f.get("TargetGroupArn") + "'")
	}
	return g, nil
}
