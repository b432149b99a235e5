package awsdouble

import "errors"

// A real data plane (the lab's HAProxy) can own the targets' health: its CheckTarget answers
// ErrCheckSkipped, so the double's own checks count for nothing, and it reports its own
// verdicts with SetTargetHealth. DescribeTargetHealth then shows what the data plane concluded,
// with the double's rules around it: unused while nothing forwards to the group or the
// instance is not running, initial while the load balancer provisions, draining after
// DeregisterTargets.

// ErrCheckSkipped is a CheckTarget answer that counts neither as a pass nor as a failure.
var ErrCheckSkipped = errors.New("health check left to the data plane")

// TargetVerdict is a data plane's judgement of one registered target.
type TargetVerdict struct {
	TargetGroupARN, InstanceID string
	Port                       int
	// State is "healthy", "unhealthy" or "initial" (not judged yet).
	State string
	// Reason and Description are AWS's for an unhealthy target: Target.Timeout,
	// Target.ResponseCodeMismatch ("Health checks failed with these codes: [503]"),
	// Target.FailedHealthChecks.
	Reason, Description string
}

// SetTargetHealth makes a data plane's verdict the target's health. It applies only while the
// load balancer checks the target (registered and not draining, a listener of an active load
// balancer forwards to its group, the instance runs) and reports whether it changed anything;
// a change runs AfterTargetChange.
func (d *Double) SetTargetHealth(v TargetVerdict) bool {
	switch v.State {
	case "healthy", "initial":
		v.Reason, v.Description = "", ""
	case "unhealthy":
	default:
		return false
	}
	d.mu.Lock()
	g := d.elb.groups[v.TargetGroupARN]
	var t *target
	if g != nil {
		key := target{id: v.InstanceID, port: v.Port}
		t = g.targets[key.key()]
	}
	changed := false
	if t != nil && !t.draining {
		lb, in := d.attachedLoadBalancer(g), d.instances[t.id]
		checked := lb != nil && lb.state() == "active" && in != nil && in.state == stateRunning
		if checked && (t.health != v.State || t.reason != v.Reason || t.desc != v.Description) {
			t.health, t.reason, t.desc, g.changed = v.State, v.Reason, v.Description, true
			changed = true
		}
	}
	d.mu.Unlock()
	if changed {
		d.notifyTargets()
	}
	return changed
}
