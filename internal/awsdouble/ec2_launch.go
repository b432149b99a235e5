package awsdouble

import (
	"encoding/base64"
	"fmt"
	"slices"
)

type launchRequest struct {
	inst      *instance
	root      *volume
	volTags   map[string]string
	publicIP  bool
	userData  []byte
	reuseFrom *instance
}

// parseLaunch validates RunInstances the way EC2 does, before anything is created.
func (d *Double) parseLaunch(f form) (*launchRequest, *apiError) {
	if tok := f.get("ClientToken"); tok != "" {
		if id, ok := d.tokens[tok]; ok {
			return &launchRequest{reuseFrom: d.instances[id]}, nil
		}
	}
	if f.int("MinCount", 0) != 1 || f.int("MaxCount", 0) != 1 {
		return nil, errorf("InvalidParameterValue", "this double launches exactly one instance: MinCount and MaxCount must be 1")
	}
	in := &instance{imageID: f.get("ImageId"), instanceType: f.get("InstanceType"), keyName: f.get("KeyName"),
		clientToken: f.get("ClientToken"), shutdownBehavior: f.get("InstanceInitiatedShutdownBehavior"),
		httpTokens: f.sub("MetadataOptions").get("HttpTokens"), state: statePending, launched: d.opts.Now()}
	a := d.ami(in.imageID)
	if a == nil {
		return nil, errorf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", in.imageID)
	}
	in.rootDevice = a.rootDevice
	if in.instanceType == "" {
		in.instanceType = "m1.small"
	}
	if !slices.Contains(instanceTypes, in.instanceType) {
		return nil, errorf("InvalidParameterValue", "Invalid value '%s' for InstanceType.", in.instanceType)
	}
	if in.keyName != "" && d.keyPairs[in.keyName] == nil {
		return nil, errorf("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", in.keyName)
	}
	switch in.shutdownBehavior {
	case "":
		in.shutdownBehavior = "stop"
	case "stop", "terminate":
	default:
		return nil, errorf("InvalidParameterValue", "Invalid value '%s' for InstanceInitiatedShutdownBehavior", in.shutdownBehavior)
	}
	if in.httpTokens == "" {
		in.httpTokens = "optional"
	}
	req := &launchRequest{inst: in}
	if nics := f.items("NetworkInterface"); len(nics) > 0 {
		if f.has("SubnetId") || len(f.list("SecurityGroupId")) > 0 {
			return nil, errorf("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID or security groups may not be specified on the same request")
		}
		in.subnetID, in.groups, req.publicIP = nics[0].get("SubnetId"), nics[0].list("SecurityGroupId"), nics[0].bool("AssociatePublicIpAddress")
	} else {
		in.subnetID, in.groups = f.get("SubnetId"), f.list("SecurityGroupId")
	}
	if e := d.placeInstance(req); e != nil {
		return nil, e
	}
	specs, e := f.tagSpecs("instance", "volume", "network-interface")
	if e != nil {
		return nil, e
	}
	in.tags, req.volTags = orEmpty(specs["instance"]), orEmpty(specs["volume"])
	if raw := f.get("UserData"); raw != "" {
		ud, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return nil, errorf("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
		}
		if len(ud) > 16384 {
			return nil, errorf("InvalidParameterValue", "User data is limited to 16384 bytes")
		}
		req.userData = ud
	}
	req.root = &volume{volType: "gp3", size: 8, deleteOnTermination: true, device: a.rootDevice}
	for _, m := range f.items("BlockDeviceMapping") {
		if m.get("DeviceName") != a.rootDevice {
			return nil, errorf("InvalidBlockDeviceMapping", "this double only models the root device %s", a.rootDevice)
		}
		ebs := m.sub("Ebs")
		req.root.volType = ebs.get("VolumeType")
		req.root.size = ebs.int("VolumeSize", 8)
		req.root.encrypted = ebs.bool("Encrypted")
		req.root.deleteOnTermination = ebs.get("DeleteOnTermination") != "false"
	}
	return req, nil
}

// placeInstance picks the subnet (the default VPC's first default subnet when none is given)
// and checks the security groups belong to its VPC.
func (d *Double) placeInstance(req *launchRequest) *apiError {
	in := req.inst
	var sn *subnet
	if in.subnetID == "" {
		for _, s := range d.subnets {
			if s.defaultForAz {
				sn = s
				break
			}
		}
		if sn == nil {
			return errorf("VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
		}
	} else if sn = d.subnet(in.subnetID); sn == nil {
		return errorf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", in.subnetID)
	}
	in.subnetID, in.vpcID = sn.id, sn.vpcID
	req.publicIP = req.publicIP || sn.mapPublicIP
	for _, g := range in.groups {
		sg := d.groups[g]
		if sg == nil {
			return errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", g)
		}
		if sg.vpcID != sn.vpcID {
			return errorf("InvalidParameter", "Security group %s and subnet %s belong to different networks.", g, sn.id)
		}
	}
	return nil
}

func (d *Double) runInstances(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	req, e := d.parseLaunch(f)
	if e != nil || req.reuseFrom != nil {
		defer d.mu.Unlock()
		if e != nil {
			return nil, e
		}
		return d.reservation(req.reuseFrom), nil
	}
	in := req.inst
	in.id, in.reservationID = d.nextID("i"), d.nextID("r")
	in.pendingLeft, in.notFoundLeft = d.opts.PendingDescribes, d.opts.NotFoundCalls
	in.privateIP = fmt.Sprintf("172.31.%d.%d", d.seq/250%250, d.seq%250+2)
	in.userData = req.userData
	if req.publicIP {
		in.publicIP = fmt.Sprintf("127.77.%d.%d", d.seq/250%250, d.seq%250+1)
	}
	hook := d.OnRunInstances
	d.mu.Unlock()

	if hook != nil && req.publicIP {
		ip, err := hook(in.id, slices.Clone(in.userData))
		if err != nil {
			return nil, errorf("InsufficientInstanceCapacity", "%v", err)
		}
		in.publicIP = ip
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	root := req.root
	root.id, root.instanceID, root.state, root.created, root.tags = d.nextID("vol"), in.id, "in-use", in.launched, req.volTags
	d.volumes[root.id] = root
	in.volumes = []string{root.id}
	d.instances[in.id] = in
	if in.clientToken != "" {
		d.tokens[in.clientToken] = in.id
	}
	return d.reservation(in), nil
}
