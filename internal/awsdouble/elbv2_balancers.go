package awsdouble

import (
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

type loadBalancer struct {
	arn, name, dns, scheme, ipType, vpcID string
	subnets, groups                       []string
	created                               time.Time // the double's clock: CreatedTime
	readyAt, deletedAt                    time.Time // the real clock
	tags                                  map[string]string
}

type listener struct {
	arn, lbARN, protocol, tgARN string
	port                        int
	tags                        map[string]string
}

// deleted reports a load balancer that was deleted; gone, one that no longer shows either.
func (lb *loadBalancer) deleted() bool { return !lb.deletedAt.IsZero() }

func (lb *loadBalancer) state() string {
	if !lb.deleted() && time.Now().Before(lb.readyAt) {
		return "provisioning"
	}
	return "active"
}

// purgeLoadBalancers drops the deleted load balancers whose Deleting window passed, and lets
// go of their security groups (which stay in use for DependencyAttempts deletes). Callers
// hold d.mu.
func (d *Double) purgeLoadBalancers() {
	for arn, lb := range d.elb.lbs {
		if !lb.deleted() || time.Since(lb.deletedAt) < d.elb.opts.Deleting {
			continue
		}
		delete(d.elb.lbs, arn)
		for _, g := range d.elb.groups {
			if g.heldBy == arn {
				g.heldBy, g.inUseLeft = "", d.elb.opts.InUseAttempts
			}
		}
		for _, id := range lb.groups {
			if g := d.groups[id]; g != nil && !d.groupUsedByLoadBalancer(id) {
				g.dependencyLeft = d.opts.DependencyAttempts
			}
		}
	}
}

// holdGroups marks a live load balancer's security groups in use: deleteSecurityGroup refuses
// a group while dependencyLeft is positive, as AWS does while the ALB's network interfaces
// use it. purgeLoadBalancers lets go of them.
func (d *Double) holdGroups(lb *loadBalancer) {
	for _, id := range lb.groups {
		if g := d.groups[id]; g != nil {
			g.dependencyLeft = math.MaxInt32
		}
	}
}

func (d *Double) groupUsedByLoadBalancer(id string) bool {
	for _, lb := range d.elb.lbs {
		if slices.Contains(lb.groups, id) {
			return true
		}
	}
	return false
}

// loadBalancer returns the load balancer with this ARN as DescribeLoadBalancers sees it.
func (d *Double) loadBalancer(arn string) *loadBalancer {
	d.purgeLoadBalancers()
	return d.elb.lbs[arn]
}

func lbNotFound(what string) *apiError {
	return errorf("LoadBalancerNotFound", "One or more load balancers not found: %s", what)
}

func (d *Double) createLoadBalancer(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	name := f.get("Name")
	if !elbNamePattern.MatchString(name) || strings.HasPrefix(name, "internal-") {
		return nil, validationError("The load balancer name '%s' is not valid: up to 32 letters, digits and hyphens, not beginning or ending with a hyphen or beginning with 'internal-'", name)
	}
	typ := orDefault(f.get("Type"), "application")
	if typ != "application" {
		return nil, validationError("this double models application load balancers only, not %q", typ)
	}
	scheme := orDefault(f.get("Scheme"), "internet-facing")
	if scheme != "internet-facing" && scheme != "internal" {
		return nil, validationError("scheme %q is not valid", scheme)
	}
	ipType := orDefault(f.get("IpAddressType"), "ipv4")
	subnets := f.list("Subnets.member")
	for _, m := range f.items("SubnetMappings.member") {
		subnets = append(subnets, m.get("SubnetId"))
	}
	azs := map[string]bool{}
	vpcID := ""
	for _, id := range subnets {
		s := d.subnet(id)
		if s == nil {
			return nil, errorf("SubnetNotFound", "The subnet ID '%s' is not valid", id)
		}
		if vpcID != "" && s.vpcID != vpcID {
			return nil, errorf("InvalidConfigurationRequest", "subnets %v are in more than one VPC", subnets)
		}
		if azs[s.az] {
			return nil, errorf("InvalidConfigurationRequest", "A load balancer cannot be attached to multiple subnets in the same Availability Zone")
		}
		vpcID, azs[s.az] = s.vpcID, true
	}
	if len(azs) < 2 {
		return nil, validationError("At least two subnets in two different Availability Zones must be specified")
	}
	groups := f.list("SecurityGroups.member")
	for _, id := range groups {
		g := d.groups[id]
		if g == nil {
			return nil, errorf("InvalidSecurityGroup", "Security group '%s' does not exist", id)
		}
		if g.vpcID != vpcID {
			return nil, errorf("InvalidConfigurationRequest", "Security group '%s' is not in VPC '%s'", id, vpcID)
		}
	}
	if len(groups) == 0 {
		for _, g := range d.groups {
			if g.vpcID == vpcID && g.name == "default" {
				groups = []string{g.id}
			}
		}
	}
	tags, e := f.elbTags()
	if e != nil {
		return nil, e
	}
	for _, lb := range d.elb.lbs {
		if lb.name != name || lb.deleted() {
			continue
		}
		// CreateLoadBalancer is idempotent: the same settings return the existing one.
		if lb.scheme == scheme && lb.ipType == ipType && sameSet(lb.subnets, subnets) && sameSet(lb.groups, groups) {
			return lbAnswer(d.xLoadBalancer(lb)), nil
		}
		return nil, errorf("DuplicateLoadBalancerName", "A load balancer with the same name '%s' exists, but with different settings", name)
	}
	id := d.nextHex16()
	lb := &loadBalancer{
		arn:  "arn:aws:elasticloadbalancing:" + d.opts.Region + ":" + d.opts.AccountID + ":loadbalancer/app/" + name + "/" + id,
		name: name, scheme: scheme, ipType: ipType, vpcID: vpcID, subnets: slices.Clone(subnets), groups: groups,
		created: d.opts.Now(), readyAt: time.Now().Add(d.elb.opts.Provisioning), tags: tags,
	}
	lb.dns = "127.0.0.1"
	if d.LoadBalancerDNS != nil {
		lb.dns = d.LoadBalancerDNS(name)
	}
	d.elb.lbs[lb.arn] = lb
	d.holdGroups(lb)
	return lbAnswer(d.xLoadBalancer(lb)), nil
}

// nextHex16 is the 16 hex digits ending a load balancer, target group or listener ARN.
// Callers hold d.mu.
func (d *Double) nextHex16() string {
	d.seq++
	return strings.Repeat("0", 8) + hex8(d.seq)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

type xAZ struct {
	SubnetID string `xml:"SubnetId"`
	ZoneName string `xml:"ZoneName"`
}

type xLoadBalancer struct {
	LoadBalancerArn       string   `xml:"LoadBalancerArn"`
	DNSName               string   `xml:"DNSName"`
	CanonicalHostedZoneId string   `xml:"CanonicalHostedZoneId"`
	CreatedTime           string   `xml:"CreatedTime"`
	LoadBalancerName      string   `xml:"LoadBalancerName"`
	Scheme                string   `xml:"Scheme"`
	VpcId                 string   `xml:"VpcId"`
	StateCode             string   `xml:"State>Code"`
	Type                  string   `xml:"Type"`
	AvailabilityZones     []xAZ    `xml:"AvailabilityZones>member"`
	SecurityGroups        []string `xml:"SecurityGroups>member"`
	IpAddressType         string   `xml:"IpAddressType"`
}

func (d *Double) xLoadBalancer(lb *loadBalancer) xLoadBalancer {
	x := xLoadBalancer{LoadBalancerArn: lb.arn, DNSName: lb.dns, CanonicalHostedZoneId: "Z32O12XQLNTSW2",
		CreatedTime: xmlTime(lb.created), LoadBalancerName: lb.name, Scheme: lb.scheme, VpcId: lb.vpcID,
		StateCode: lb.state(), Type: "application", SecurityGroups: lb.groups, IpAddressType: lb.ipType}
	for _, id := range lb.subnets {
		if s := d.subnet(id); s != nil {
			x.AvailabilityZones = append(x.AvailabilityZones, xAZ{s.id, s.az})
		}
	}
	return x
}

type lbList struct {
	LoadBalancers []xLoadBalancer `xml:"LoadBalancers>member"`
	NextMarker    string          `xml:"NextMarker,omitempty"`
}

func lbAnswer(x xLoadBalancer) *lbList { return &lbList{LoadBalancers: []xLoadBalancer{x}} }

func (d *Double) describeLoadBalancers(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	arns, names := f.list("LoadBalancerArns.member"), f.list("Names.member")
	if len(arns) > 0 && len(names) > 0 {
		return nil, validationError("Load balancer names and load balancer ARNs cannot be specified at the same time")
	}
	var picked []*loadBalancer
	for _, arn := range arns {
		lb := d.elb.lbs[arn]
		if lb == nil {
			return nil, lbNotFound("'" + arn + "'")
		}
		picked = append(picked, lb)
	}
	for _, name := range names {
		i := slices.IndexFunc(sortedValues(d.elb.lbs, lbKey), func(lb *loadBalancer) bool { return lb.name == name })
		if i < 0 {
			return nil, lbNotFound("'" + name + "'")
		}
		picked = append(picked, sortedValues(d.elb.lbs, lbKey)[i])
	}
	if len(arns) == 0 && len(names) == 0 {
		picked = sortedValues(d.elb.lbs, lbKey)
	}
	cut, next, e := page(d, f, picked)
	if e != nil {
		return nil, e
	}
	out := &lbList{NextMarker: next}
	for _, lb := range cut {
		out.LoadBalancers = append(out.LoadBalancers, d.xLoadBalancer(lb))
	}
	return out, nil
}

func lbKey(lb *loadBalancer) string { return lb.arn }

// deleteLoadBalancer deletes the load balancer and its listeners. As on AWS, deleting one that
// does not exist (or no longer does) succeeds.
func (d *Double) deleteLoadBalancer(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	lb := d.loadBalancer(f.get("LoadBalancerArn"))
	if lb == nil || lb.deleted() {
		return nil, nil
	}
	lb.deletedAt = time.Now()
	for arn, l := range d.elb.listeners {
		if l.lbARN != lb.arn {
			continue
		}
		delete(d.elb.listeners, arn)
		if g := d.elb.groups[l.tgARN]; g != nil {
			g.heldBy, g.changed = lb.arn, true
		}
	}
	d.purgeLoadBalancers()
	return nil, nil
}

func (d *Double) createListener(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	lb := d.loadBalancer(f.get("LoadBalancerArn"))
	if lb == nil || lb.deleted() {
		return nil, lbNotFound("'" + f.get("LoadBalancerArn") + "'")
	}
	protocol, port := f.get("Protocol"), f.int("Port", 0)
	if protocol != "HTTP" {
		return nil, errorf("UnsupportedProtocol", "this double models HTTP listeners only, not %q", protocol)
	}
	if port < 1 || port > 65535 {
		return nil, validationError("Port must be between 1 and 65535")
	}
	actions := f.items("DefaultActions.member")
	if len(actions) != 1 || actions[0].get("Type") != "forward" {
		return nil, validationError("this double models one forward default action")
	}
	tgARN := actions[0].get("TargetGroupArn")
	if tgARN == "" {
		if tgs := actions[0].sub("ForwardConfig").items("TargetGroups.member"); len(tgs) == 1 {
			tgARN = tgs[0].get("TargetGroupArn")
		}
	}
	g := d.elb.groups[tgARN]
	if g == nil {
		return nil, errorf("TargetGroupNotFound", "Target groups '%s' not found", tgARN)
	}
	if g.vpcID != lb.vpcID {
		return nil, validationError("target group %s is not in the load balancer's VPC %s", tgARN, lb.vpcID)
	}
	if other := d.attachedLoadBalancer(g); other != nil && other.arn != lb.arn {
		return nil, errorf("TargetGroupAssociationLimit", "The following target groups cannot be associated with more than one load balancer: %s", tgARN)
	}
	tags, e := f.elbTags()
	if e != nil {
		return nil, e
	}
	for _, l := range d.elb.listeners {
		if l.lbARN != lb.arn || l.port != port {
			continue
		}
		if l.protocol == protocol && l.tgARN == tgARN { // idempotent
			return listenerAnswer(l), nil
		}
		return nil, errorf("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", lb.arn)
	}
	lbPath := strings.TrimPrefix(lb.arn[strings.Index(lb.arn, ":loadbalancer/")+1:], "loadbalancer/")
	l := &listener{arn: "arn:aws:elasticloadbalancing:" + d.opts.Region + ":" + d.opts.AccountID + ":listener/" + lbPath + "/" + d.nextHex16(), lbARN: lb.arn, protocol: protocol, port: port, tgARN: tgARN, tags: tags}
	d.elb.listeners[l.arn] = l
	g.changed = true
	return listenerAnswer(l), nil
}

type xAction struct {
	Type           string `xml:"Type"`
	TargetGroupArn string `xml:"TargetGroupArn"`
	ForwardTG      string `xml:"ForwardConfig>TargetGroups>member>TargetGroupArn"`
	Weight         int    `xml:"ForwardConfig>TargetGroups>member>Weight"`
}

type xListener struct {
	ListenerArn     string    `xml:"ListenerArn"`
	LoadBalancerArn string    `xml:"LoadBalancerArn"`
	Port            int       `xml:"Port"`
	Protocol        string    `xml:"Protocol"`
	DefaultActions  []xAction `xml:"DefaultActions>member"`
}

func xListenerOf(l *listener) xListener {
	return xListener{ListenerArn: l.arn, LoadBalancerArn: l.lbARN, Port: l.port, Protocol: l.protocol,
		DefaultActions: []xAction{{"forward", l.tgARN, l.tgARN, 1}}}
}

type listenerList struct {
	Listeners  []xListener `xml:"Listeners>member"`
	NextMarker string      `xml:"NextMarker,omitempty"`
}

func listenerAnswer(l *listener) *listenerList {
	return &listenerList{Listeners: []xListener{xListenerOf(l)}}
}

func (d *Double) describeListeners(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.purgeLoadBalancers()
	lbARN, arns := f.get("LoadBalancerArn"), f.list("ListenerArns.member")
	var picked []*listener
	switch {
	case lbARN != "" && len(arns) > 0:
		return nil, validationError("Listener ARNs and a load balancer ARN cannot be specified at the same time")
	case lbARN != "":
		if lb := d.elb.lbs[lbARN]; lb == nil || lb.deleted() {
			return nil, lbNotFound("'" + lbARN + "'")
		}
		for _, l := range sortedValues(d.elb.listeners, func(l *listener) string { return l.arn }) {
			if l.lbARN == lbARN {
				picked = append(picked, l)
			}
		}
	case len(arns) > 0:
		for _, arn := range arns {
			l := d.elb.listeners[arn]
			if l == nil {
				return nil, errorf("ListenerNotFound", "One or more listeners not found")
			}
			picked = append(picked, l)
		}
	default:
		return nil, validationError("You must specify either listener ARNs or a load balancer ARN")
	}
	cut, next, e := page(d, f, picked)
	if e != nil {
		return nil, e
	}
	out := &listenerList{NextMarker: next}
	for _, l := range cut {
		out.Listeners = append(out.Listeners, xListenerOf(l))
	}
	return out, nil
}

func (d *Double) deleteListener(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	arn := f.get("ListenerArn")
	l := d.elb.listeners[arn]
	if l == nil {
		return nil, errorf("ListenerNotFound", "One or more listeners not found")
	}
	delete(d.elb.listeners, arn)
	if g := d.elb.groups[l.tgARN]; g != nil {
		g.changed = true
	}
	return nil, nil
}

// tagged finds the tags of an ELBv2 resource by ARN; nil with an error naming what is missing.
func (d *Double) tagged(arn string) (map[string]string, *apiError) {
	switch {
	case strings.Contains(arn, ":loadbalancer/"):
		if lb := d.loadBalancer(arn); lb != nil && !lb.deleted() {
			return lb.tags, nil
		}
		return nil, lbNotFound("'" + arn + "'")
	case strings.Contains(arn, ":targetgroup/"):
		if g := d.elb.groups[arn]; g != nil {
			return g.tags, nil
		}
		return nil, errorf("TargetGroupNotFound", "Target groups '%s' not found", arn)
	case strings.Contains(arn, ":listener/"):
		if l := d.elb.listeners[arn]; l != nil {
			return l.tags, nil
		}
		return nil, errorf("ListenerNotFound", "One or more listeners not found")
	}
	return nil, validationError("'%s' is not a valid resource ARN", arn)
}

func (d *Double) describeTags(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	arns := f.list("ResourceArns.member")
	if len(arns) == 0 || len(arns) > 20 {
		return nil, validationError("ResourceArns must name 1 to 20 resources")
	}
	type xDesc struct {
		ResourceArn string    `xml:"ResourceArn"`
		Tags        []xELBTag `xml:"Tags>member"`
	}
	out := &struct {
		TagDescriptions []xDesc `xml:"TagDescriptions>member"`
	}{}
	for _, arn := range arns {
		tags, e := d.tagged(arn)
		if e != nil {
			return nil, e
		}
		out.TagDescriptions = append(out.TagDescriptions, xDesc{arn, xELBTags(tags)})
	}
	return out, nil
}

func (d *Double) addTags(f form) (any, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	arns := f.list("ResourceArns.member")
	tags, e := f.elbTags()
	if e != nil {
		return nil, e
	}
	if len(arns) == 0 || len(arns) > 20 || len(tags) == 0 {
		return nil, validationError("AddTags needs 1 to 20 resources and at least one tag")
	}
	var all []map[string]string
	for _, arn := range arns {
		have, e := d.tagged(arn)
		if e != nil {
			return nil, e
		}
		merged := maps.Clone(have)
		maps.Copy(merged, tags)
		if len(merged) > 50 {
			return nil, errorf("TooManyTags", "You have reached the limit on the number of tags you can assign to %s", arn)
		}
		all = append(all, have)
	}
	for _, have := range all {
		maps.Copy(have, tags)
	}
	return nil, nil
}
