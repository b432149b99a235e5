package awsdouble

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

type keyPair struct {
	id, name, fingerprint, keyType, publicKey string
	created                                   time.Time
	tags                                      map[string]string
}

func (d *Double) importKeyPair(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := f.get("KeyName")
	if name == "" {
		return nil, errorf("MissingParameter", "The request must contain the parameter KeyName")
	}
	if _, ok := d.keyPairs[name]; ok {
		return nil, errorf("InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", name)
	}
	material, err := base64.StdEncoding.DecodeString(f.get("PublicKeyMaterial"))
	if err != nil {
		return nil, errorf("InvalidParameterValue", "Value for parameter PublicKeyMaterial is invalid: not base64")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(material)
	if err != nil {
		return nil, errorf("InvalidKey.Format", "Key is not in valid OpenSSH public key format")
	}
	keyType := map[string]string{ssh.KeyAlgoED25519: "ed25519", ssh.KeyAlgoRSA: "rsa"}[pub.Type()]
	if keyType == "" {
		return nil, errorf("InvalidKey.Format", "Key type %s is not supported", pub.Type())
	}
	specs, e := f.tagSpecs("key-pair")
	if e != nil {
		return nil, e
	}
	sum := sha256.Sum256(pub.Marshal())
	k := &keyPair{
		id: d.nextID("key"), name: name, keyType: keyType, created: d.opts.Now(),
		fingerprint: base64.StdEncoding.EncodeToString(sum[:]),
		publicKey:   string(ssh.MarshalAuthorizedKey(pub)), tags: orEmpty(specs["key-pair"]),
	}
	d.keyPairs[name] = k
	return &struct {
		Envelope
		KeyName     string `xml:"keyName"`
		Fingerprint string `xml:"keyFingerprint"`
		KeyPairID   string `xml:"keyPairId"`
		Tags        []xTag `xml:"tagSet>item"`
	}{KeyName: k.name, Fingerprint: k.fingerprint, KeyPairID: k.id, Tags: xTags(k.tags)}, nil
}

// ImportKeyPair seeds a key pair with these tags (none: a key pair this tool did not make),
// as if someone had imported it: for tests of what teardown and sweep must leave alone.
func (d *Double) ImportKeyPair(name string, tags map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.keyPairs[name]; ok {
		return fmt.Errorf("import key pair %s: it exists", name)
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	pub := signer.PublicKey()
	sum := sha256.Sum256(pub.Marshal())
	d.keyPairs[name] = &keyPair{id: d.nextID("key"), name: name, keyType: "ed25519", created: d.opts.Now(),
		fingerprint: base64.StdEncoding.EncodeToString(sum[:]), publicKey: string(ssh.MarshalAuthorizedKey(pub)), tags: maps.Clone(orEmpty(tags))}
	return nil
}

type xKeyPair struct {
	KeyPairID   string `xml:"keyPairId"`
	KeyName     string `xml:"keyName"`
	Fingerprint string `xml:"keyFingerprint"`
	KeyType     string `xml:"keyType"`
	CreateTime  string `xml:"createTime"`
	Tags        []xTag `xml:"tagSet>item"`
}

func (d *Double) describeKeyPairs(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := f.list("KeyName")
	for _, n := range names {
		if d.keyPairs[n] == nil {
			return nil, errorf("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", n)
		}
	}
	out := &struct {
		Envelope
		Keys []xKeyPair `xml:"keySet>item"`
	}{}
	filters, e := f.filtersFor((&keyPair{}).attrs)
	if e != nil {
		return nil, e
	}
	for _, k := range sortedValues(d.keyPairs, func(k *keyPair) string { return k.name }) {
		ok := match(filters, k.attrs)
		if ok && (len(names) == 0 || slices.Contains(names, k.name)) {
			out.Keys = append(out.Keys, xKeyPair{k.id, k.name, k.fingerprint, k.keyType, xmlTime(k.created), xTags(k.tags)})
		}
	}
	return out, nil
}

func (k *keyPair) attrs(name string) ([]string, bool) {
	switch name {
	case "key-name":
		return []string{k.name}, true
	case "key-pair-id":
		return []string{k.id}, true
	}
	return tagAttrs(k.tags, name)
}

// deleteKeyPair succeeds for names that do not exist, as AWS does.
func (d *Double) deleteKeyPair(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name, id := f.get("KeyName"), f.get("KeyPairId")
	for n, k := range d.keyPairs {
		if n == name || (id != "" && k.id == id) {
			delete(d.keyPairs, n)
		}
	}
	return &ReturnAnswer{Return: true}, nil
}

type ami struct {
	id, name, owner, arch, rootDevice string
	created                           time.Time
}

// Canonical's account and two Ubuntu 24.04 images; SSM's public parameter names the newer one.
const (
	CanonicalOwner     = "099720109477"
	UbuntuAMI          = "ami-0000000000000c240"
	OlderUbuntuAMI     = "ami-0000000000000c23f"
	UbuntuAMIParameter = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)

func (d *Double) seedImages() {
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	d.amis = []*ami{
		{id: OlderUbuntuAMI, name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250501", owner: CanonicalOwner, arch: "x86_64", rootDevice: "/dev/sda1", created: base.AddDate(0, -1, 0)},
		{id: UbuntuAMI, name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250601", owner: CanonicalOwner, arch: "x86_64", rootDevice: "/dev/sda1", created: base},
		{id: "ami-0000000000000a640", name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20250601", owner: CanonicalOwner, arch: "arm64", rootDevice: "/dev/sda1", created: base},
		{id: "ami-00000000000000e11", name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-29990101", owner: "111122223333", arch: "x86_64", rootDevice: "/dev/sda1", created: base.AddDate(1, 0, 0)},
	}
	d.params[UbuntuAMIParameter] = UbuntuAMI
}

type xImage struct {
	ImageID        string `xml:"imageId"`
	Name           string `xml:"name"`
	OwnerID        string `xml:"imageOwnerId"`
	State          string `xml:"imageState"`
	Architecture   string `xml:"architecture"`
	CreationDate   string `xml:"creationDate"`
	RootDeviceName string `xml:"rootDeviceName"`
	RootDeviceType string `xml:"rootDeviceType"`
	Virtualization string `xml:"virtualizationType"`
	Public         bool   `xml:"isPublic"`
}

func (d *Double) describeImages(f form) (ec2Answer, *apiError) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids, owners := f.list("ImageId"), f.list("Owner")
	out := &struct {
		Envelope
		Images []xImage `xml:"imagesSet>item"`
	}{}
	for _, id := range ids {
		if d.ami(id) == nil {
			return nil, errorf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
	}
	filters, e := f.filtersFor((&ami{}).attrs)
	if e != nil {
		return nil, e
	}
	for _, a := range d.amis {
		ok := match(filters, a.attrs)
		if !ok || (len(ids) > 0 && !slices.Contains(ids, a.id)) || (len(owners) > 0 && !slices.Contains(owners, a.owner)) {
			continue
		}
		out.Images = append(out.Images, xImage{a.id, a.name, a.owner, "available", a.arch, xmlTime(a.created), a.rootDevice, "ebs", "hvm", true})
	}
	return out, nil
}

func (a *ami) attrs(name string) ([]string, bool) {
	switch name {
	case "name":
		return []string{a.name}, true
	case "state":
		return []string{"available"}, true
	case "architecture":
		return []string{a.arch}, true
	case "root-device-type":
		return []string{"ebs"}, true
	case "virtualization-type":
		return []string{"hvm"}, true
	case "owner-id":
		return []string{a.owner}, true
	}
	return tagAttrs(nil, name)
}

func (d *Double) ami(id string) *ami {
	for _, a := range d.amis {
		if a.id == id {
			return a
		}
	}
	return nil
}

func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
