package awsdouble

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

const (
	statePending      = "pending"
	stateRunning      = "running"
	stateShuttingDown = "shutting-down"
	stateTerminated   = "terminated"
	stateStopped      = "stopped"
)

var stateCodes = map[string]int{statePending: 0, stateRunning: 16, stateShuttingDown: 32, stateTerminated: 48, "stopping": 64, stateStopped: 80}

var instanceTypes = []string{"m1.small", "t2.micro", "t2.small", "t3.micro", "t3.small", "t3.medium", "t3a.micro", "t3a.small", "m5.large"}

type instance struct {
	id, imageID, instanceType, keyName, subnetID, vpcID string
	privateIP, publicIP, clientToken, reservationID     string
	shutdownBehavior, httpTokens, rootDevice            string
	groups, volumes                                     []string
	state                                               string
	launched                                            time.Time
	tags                                                map[string]string
	userData                                            []byte
	pendingLeft, shuttingLeft, notFoundLeft             int
}

type xState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xGroupRef struct {
	GroupID string `xml:"groupId"`
}

type xBlockDevice struct {
	DeviceName string `xml:"deviceName"`
	VolumeID   string `xml:"ebs>volumeId"`
	Status     string `xml:"ebs>status"`
	DeleteOnT  bool   `xml:"ebs>deleteOnTermination"`
}

type xInstance struct {
	InstanceID       string         `xml:"instanceId"`
	ImageID          string         `xml:"imageId"`
	State            xState         `xml:"instanceState"`
	KeyName          string         `xml:"keyName,omitempty"`
	InstanceType     string         `xml:"instanceType"`
	LaunchTime       string         `xml:"launchTime"`
	SubnetID         string         `xml:"subnetId"`
	VpcID            string         `xml:"vpcId"`
	PrivateIP        string         `xml:"privateIpAddress,omitempty"`
	PublicIP         string         `xml:"ipAddress,omitempty"`
	Groups           []xGroupRef    `xml:"groupSet>item"`
	RootDeviceName   string         `xml:"rootDeviceName"`
	BlockDevices     []xBlockDevice `xml:"blockDeviceMapping>item"`
	ClientToken      string         `xml:"clientToken,omitempty"`
	Tags             []xTag         `xml:"tagSet>item"`
	HTTPTokens       string         `xml:"metadataOptions>httpTokens"`
	MetadataState    string         `xml:"metadataOptions>state"`
	ShutdownBehavior string         `xml:"-"`
}

func (d *Double) xInstance(in *instance) xInstance {
	x := xInstance{InstanceID: in.id, ImageID: in.imageID, State: xState{stateCodes[in.state], in.state},
		KeyName: in.keyName, InstanceType: in.instanceType, LaunchTime: xmlTime(in.launched),
		SubnetID: in.subnetID, VpcID: in.vpcID, RootDeviceName: in.rootDevice, ClientToken: in.clientToken,
		Tags: xTags(in.tags), HTTPTokens: in.httpTokens, MetadataState: "applied"}
	if in.state != stateTerminated {
		x.PrivateIP = in.privateIP
	}
	// AWS shows the public address once the instance leaves pending and drops it at shutdown.
	if in.state == stateRunning {
		x.PublicIP = in.publicIP
	}
	for _, g := range in.groups {
		x.Groups = append(x.Groups, xGroupRef{g})
	}
	for _, id := range in.volumes {
		if v := d.volumes[id]; v != nil && v.instanceID == in.id {
			x.BlockDevices = append(x.BlockDevices, xBlockDevice{v.device, v.id, "attached", v.deleteOnTermination})
		}
	}
	return x
}

type reservationAnswer struct {
	Envelope
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

func (d *Double) reservation(in *instance) *reservationAnswer {
	return &reservationAnswer{ReservationID: in.reservationID, OwnerID: d.opts.AccountID, Instances: []xInstance{d.xInstance(in)}}
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

func (d *Double) describeInstances(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := f.list("InstanceId")
	if e := d.checkVisible(ids); e != nil {
		return nil, e
	}
	filters, e := f.filtersFor((&instance{}).attrs)
	if e != nil {
		return nil, e
	}
	var picked []*instance
	for _, in := range sortedValues(d.instances, func(in *instance) string { return in.id }) {
		ok := match(filters, in.attrs)
		if in.notFoundLeft > 0 && len(ids) == 0 {
			in.notFoundLeft-- // not yet visible to listings either, but becoming so
			continue
		}
		if ok && (len(ids) == 0 || slices.Contains(ids, in.id)) {
			picked = append(picked, in)
		}
	}
	start, next := 0, ""
	if f.has("MaxResults") {
		start, _ = strconv.Atoi(f.get("NextToken"))
		end := min(start+min(f.int("MaxResults", 1000), d.opts.PageSize), len(picked))
		if end < len(picked) {
			next = strconv.Itoa(end)
		}
		picked = picked[min(start, len(picked)):end]
	}
	out := &struct {
		Envelope
		Reservations []xReservation `xml:"reservationSet>item"`
		NextToken    string         `xml:"nextToken,omitempty"`
	}{NextToken: next}
	for _, in := range picked {
		d.advance(in)
		out.Reservations = append(out.Reservations, xReservation{in.reservationID, d.opts.AccountID, []xInstance{d.xInstance(in)}})
	}
	return out, nil
}

// checkVisible fails like EC2 does for ids it does not know yet (or at all).
func (d *Double) checkVisible(ids []string) *apiError {
	for _, id := range ids {
		in := d.instances[id]
		if in == nil {
			return errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		if in.notFoundLeft > 0 {
			in.notFoundLeft--
			return errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	return nil
}

func (in *instance) attrs(name string) ([]string, bool) {
	switch name {
	case "instance-id":
		return []string{in.id}, true
	case "instance-state-name":
		return []string{in.state}, true
	case "vpc-id":
		return []string{in.vpcID}, true
	case "subnet-id":
		return []string{in.subnetID}, true
	case "client-token":
		return []string{in.clientToken}, true
	case "key-name":
		return []string{in.keyName}, true
	case "instance.group-id":
		return in.groups, true
	}
	return tagAttrs(in.tags, name)
}

// advance moves an instance one describe further through pending or shutting-down.
func (d *Double) advance(in *instance) {
	switch in.state {
	case statePending:
		if in.pendingLeft == 0 {
			in.state = stateRunning
		} else {
			in.pendingLeft--
		}
	case stateShuttingDown:
		if in.shuttingLeft == 0 {
			d.finishTermination(in)
		} else {
			in.shuttingLeft--
		}
	}
}

func (d *Double) finishTermination(in *instance) {
	in.state = stateTerminated
	for _, id := range in.volumes {
		v := d.volumes[id]
		if v == nil {
			continue
		}
		if v.deleteOnTermination {
			delete(d.volumes, id)
		} else {
			v.state, v.instanceID = "available", ""
		}
	}
	for _, g := range in.groups {
		if sg := d.groups[g]; sg != nil {
			sg.dependencyLeft = d.opts.DependencyAttempts
		}
	}
}

type xStateChange struct {
	InstanceID string `xml:"instanceId"`
	Current    xState `xml:"currentState"`
	Previous   xState `xml:"previousState"`
}

func (d *Double) terminateInstances(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := f.list("InstanceId")
	if len(ids) == 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	if e := d.checkVisible(ids); e != nil {
		return nil, e
	}
	out := &struct {
		Envelope
		Changes []xStateChange `xml:"instancesSet>item"`
	}{}
	for _, id := range ids {
		in := d.instances[id]
		prev := in.state
		d.shutDown(in)
		out.Changes = append(out.Changes, xStateChange{id, xState{stateCodes[in.state], in.state}, xState{stateCodes[prev], prev}})
	}
	return out, nil
}

func (d *Double) shutDown(in *instance) {
	if in.state == stateShuttingDown || in.state == stateTerminated {
		return
	}
	in.state, in.shuttingLeft = stateShuttingDown, d.opts.ShuttingDownDescribes
}

// PowerOff is the guest powering itself off (the dead-man's switch): the instance terminates
// when launched with InstanceInitiatedShutdownBehavior=terminate and stops otherwise.
func (d *Double) PowerOff(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	in := d.instances[id]
	if in == nil {
		return fmt.Errorf("power off %s: no such instance", id)
	}
	if in.shutdownBehavior == "terminate" {
		d.shutDown(in)
	} else if in.state != stateTerminated {
		in.state = stateStopped
	}
	return nil
}
