package awsdouble

import (
	"slices"
	"strconv"
	"time"
)

type volume struct {
	id, volType, state, instanceID, device string
	size                                   int
	encrypted, deleteOnTermination         bool
	created                                time.Time
	tags                                   map[string]string
}

type xAttachment struct {
	InstanceID string `xml:"instanceId"`
	Device     string `xml:"device"`
	Status     string `xml:"status"`
	DeleteOnT  bool   `xml:"deleteOnTermination"`
}

type xVolume struct {
	VolumeID    string        `xml:"volumeId"`
	Size        int           `xml:"size"`
	AZ          string        `xml:"availabilityZone"`
	Status      string        `xml:"status"`
	CreateTime  string        `xml:"createTime"`
	VolumeType  string        `xml:"volumeType"`
	Encrypted   bool          `xml:"encrypted"`
	Attachments []xAttachment `xml:"attachmentSet>item"`
	Tags        []xTag        `xml:"tagSet>item"`
}

func (d *Double) describeVolumes(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := f.list("VolumeId")
	for _, id := range ids {
		if d.volumes[id] == nil {
			return nil, errorf("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
		}
	}
	out := &struct {
		Envelope
		Volumes []xVolume `xml:"volumeSet>item"`
	}{}
	filters, e := f.filtersFor((&volume{}).attrs)
	if e != nil {
		return nil, e
	}
	for _, v := range sortedValues(d.volumes, func(v *volume) string { return v.id }) {
		ok := match(filters, v.attrs)
		if !ok || (len(ids) > 0 && !slices.Contains(ids, v.id)) {
			continue
		}
		x := xVolume{VolumeID: v.id, Size: v.size, AZ: d.opts.Region + "a", Status: v.state, CreateTime: xmlTime(v.created),
			VolumeType: v.volType, Encrypted: v.encrypted, Tags: xTags(v.tags)}
		if v.instanceID != "" {
			x.Attachments = []xAttachment{{v.instanceID, v.device, "attached", v.deleteOnTermination}}
		}
		out.Volumes = append(out.Volumes, x)
	}
	return out, nil
}

func (v *volume) attrs(name string) ([]string, bool) {
	switch name {
	case "volume-id":
		return []string{v.id}, true
	case "status":
		return []string{v.state}, true
	case "attachment.instance-id":
		return []string{v.instanceID}, true
	case "encrypted":
		return []string{strconv.FormatBool(v.encrypted)}, true
	}
	return tagAttrs(v.tags, name)
}

func (d *Double) deleteVolume(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := f.get("VolumeId")
	v := d.volumes[id]
	if v == nil {
		return nil, errorf("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
	}
	if v.state == "in-use" {
		return nil, errorf("VolumeInUse", "Volume %s is currently attached to %s", id, v.instanceID)
	}
	delete(d.volumes, id)
	return &ReturnAnswer{Return: true}, nil
}
