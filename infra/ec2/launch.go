package ec2

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/infra/steps"
)

// launch carries one LaunchHost through its steps.
type launch struct {
	h      *Hosts
	spec   HostSpec
	host   *Host
	image  image
	subnet subnet
	began  time.Time
}

// LaunchHost boots the drill host and returns once it runs with a public IP; dialing SSH (with
// Host.HostKey pinned and Host.Signer) is infra/remote's. On failure the returned Host holds
// what was created, for teardown; nothing is left untagged.
func (h *Hosts) LaunchHost(ctx context.Context, spec HostSpec) (*Host, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &launch{h: h, spec: spec, began: time.Now(), host: &Host{
		RunID: spec.Run.ID, Index: spec.Index, InstanceType: spec.InstanceType, SSHPort: h.sshPort, User: spec.User,
	}}
	if err := steps.Run(ctx, "launch host",
		steps.Step{Name: "resolve ami", Run: l.resolveAMI},
		steps.Step{Name: "pick subnet", Run: l.pickSubnet},
		steps.Step{Name: "decide ssh source", Run: l.decideSSHSource},
		steps.Step{Name: "generate keys", Run: l.generateKeys},
		steps.Step{Name: "create security group", Run: l.createSecurityGroup},
		steps.Step{Name: "import key pair", Run: l.importKeyPair},
		steps.Step{Name: "run instance", Run: l.runInstance},
		steps.Step{Name: "wait until running", Run: l.waitRunning},
	); err != nil {
		return l.host, err
	}
	l.host.BootDuration = time.Since(l.host.LaunchedAt)
	l.h.log.Info("instance running", "instance", l.host.InstanceID, "ip", l.host.PublicIP.String(), "after", l.host.BootDuration)
	return l.host, nil
}

func (l *launch) resolveAMI(ctx context.Context) (err error) {
	l.image, err = l.h.resolveAMI(ctx, l.spec.AMI)
	l.host.AMI = l.image.id
	return err
}

func (l *launch) pickSubnet(ctx context.Context) (err error) {
	l.subnet, err = l.h.pickSubnet(ctx, l.spec.SubnetID)
	return err
}

func (l *launch) decideSSHSource(ctx context.Context) error {
	if l.spec.SSHCIDR.IsValid() || l.spec.SecurityGroupID != "" { // a given group's rules are its own
		return nil
	}
	ip, err := l.h.detectIP(ctx)
	if err != nil {
		return err
	}
	l.spec.SSHCIDR = hostPrefix(ip)
	l.h.log.Info("ssh allowed from the detected public ip", "cidr", l.spec.SSHCIDR.String())
	return nil
}

func (l *launch) generateKeys(context.Context) (err error) {
	if from := l.spec.KeyFrom; from != nil {
		l.host.keys, err = sharedKeys(l.h.rand, from.keys)
	} else {
		l.host.keys, err = newRunKeys(l.h.rand)
	}
	if err == nil {
		l.host.HostKey = l.host.keys.host.PublicKey()
	}
	return err
}

func (l *launch) createSecurityGroup(ctx context.Context) error {
	if id := l.spec.SecurityGroupID; id != "" {
		l.host.SecurityGroupID = id
		return nil
	}
	run := l.spec.Run
	out, err := l.h.api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(run.ResourceName()),
		Description:       aws.String(fmt.Sprintf("deploydrill run %s: ssh from the runner, http to the app", run.ID)),
		VpcId:             aws.String(l.subnet.vpcID),
		TagSpecifications: tagSpecs(run, types.ResourceTypeSecurityGroup),
	})
	if err != nil {
		return fmt.Errorf("create security group %s: %w", run.ResourceName(), err)
	}
	l.host.SecurityGroupID = aws.ToString(out.GroupId)
	_, err = l.h.api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       out.GroupId,
		IpPermissions: []types.IpPermission{tcpFrom(22, l.spec.SSHCIDR, "ssh from the runner"), tcpFrom(80, l.spec.HTTPCIDR, "http to the app")},
	})
	if err != nil && errorCode(err) != "InvalidPermission.Duplicate" {
		return fmt.Errorf("open ports 22 and 80 on %s: %w", l.host.SecurityGroupID, err)
	}
	return nil
}

func tcpFrom(port int32, from netip.Prefix, why string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	if from.Addr().Is6() {
		p.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(from.String()), Description: aws.String(why)}}
	} else {
		p.IpRanges = []types.IpRange{{CidrIp: aws.String(from.String()), Description: aws.String(why)}}
	}
	return p
}

func (l *launch) importKeyPair(ctx context.Context) error {
	if from := l.spec.KeyFrom; from != nil {
		l.host.KeyName, l.host.KeyPairID = from.KeyName, from.KeyPairID
		return nil
	}
	run, name := l.spec.Run, HostName(l.spec.Run, l.spec.Index)
	out, err := l.h.api.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName:           aws.String(name),
		PublicKeyMaterial: []byte(authorizedKey(l.host.keys.client.PublicKey(), "deploydrill-"+run.ID)),
		TagSpecifications: tagSpecsNamed(run, name, types.ResourceTypeKeyPair),
	})
	if err != nil {
		return fmt.Errorf("import key pair %s: %w", name, err)
	}
	l.host.KeyName, l.host.KeyPairID = name, aws.ToString(out.KeyPairId)
	return nil
}

func (l *launch) runInstance(ctx context.Context) error {
	run, name := l.spec.Run, HostName(l.spec.Run, l.spec.Index)
	userData, err := UserData{
		RunID: run.ID, User: l.spec.User, MaxLifetime: run.Lifetime,
		AuthorizedKey:  authorizedKey(l.host.keys.client.PublicKey(), "deploydrill-"+run.ID),
		HostPrivateKey: l.host.keys.hostPEM,
		HostPublicKey:  authorizedKey(l.host.keys.host.PublicKey(), "deploydrill-host"),
	}.Render()
	if err != nil {
		return err
	}
	in := &ec2.RunInstancesInput{
		ImageId: aws.String(l.image.id), InstanceType: types.InstanceType(l.spec.InstanceType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		KeyName:     aws.String(l.host.KeyName),
		ClientToken: aws.String(name), // per host: a retry returns this host's instance, never another's
		UserData:    aws.String(base64.StdEncoding.EncodeToString(userData)),
		// An OS-level poweroff (the dead-man's switch) terminates rather than stops.
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		// IMDSv2 only, and one hop so containers cannot reach the metadata service.
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens: types.HttpTokensStateRequired, HttpEndpoint: types.InstanceMetadataEndpointStateEnabled, HttpPutResponseHopLimit: aws.Int32(1),
		},
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(l.subnet.id), Groups: []string{l.host.SecurityGroupID},
			AssociatePublicIpAddress: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
		}},
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String(l.image.rootDevice), Ebs: &types.EbsBlockDevice{
			VolumeType: types.VolumeTypeGp3, VolumeSize: aws.Int32(l.spec.RootGiB), Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
		}}},
		TagSpecifications: tagSpecsNamed(run, name, types.ResourceTypeInstance, types.ResourceTypeVolume, types.ResourceTypeNetworkInterface),
	}
	if burstable(l.spec.InstanceType) {
		// "unlimited" (t3's default) can bill CPU credits after a busy boot; a drill never needs it.
		in.CreditSpecification = &types.CreditSpecificationRequest{CpuCredits: aws.String("standard")}
	}
	l.host.LaunchedAt = time.Now()
	out, err := l.h.api.RunInstances(ctx, in)
	if err != nil {
		if !answered(err) {
			l.host.run = &pendingRun{input: in}
		}
		return fmt.Errorf("run instance (%s, %s): %w", l.image.id, l.spec.InstanceType, err)
	}
	if len(out.Instances) != 1 {
		return fmt.Errorf("run instance: got %d instances, want 1", len(out.Instances))
	}
	l.host.InstanceID = aws.ToString(out.Instances[0].InstanceId)
	l.h.log.Info("instance launched", "instance", l.host.InstanceID, "type", l.spec.InstanceType, "ami", l.image.id, "subnet", l.subnet.id)
	return nil
}

func burstable(instanceType string) bool {
	for _, family := range []string{"t2.", "t3.", "t3a.", "t4g."} {
		if strings.HasPrefix(instanceType, family) {
			return true
		}
	}
	return false
}

func (l *launch) waitRunning(ctx context.Context) error {
	t := l.h.timing.Running
	w := ec2.NewInstanceRunningWaiter(l.h.api, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = t.Initial, t.Max
	})
	out, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{l.host.InstanceID}}, t.Timeout)
	if err != nil {
		return fmt.Errorf("wait for %s to run (up to %s): %w", l.host.InstanceID, t.Timeout, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if ip, err := netip.ParseAddr(aws.ToString(in.PublicIpAddress)); err == nil {
				l.host.PublicIP = ip
			}
			for _, bd := range in.BlockDeviceMappings {
				if bd.Ebs != nil && bd.Ebs.VolumeId != nil && !slices.Contains(l.host.VolumeIDs, *bd.Ebs.VolumeId) {
					l.host.VolumeIDs = append(l.host.VolumeIDs, *bd.Ebs.VolumeId)
				}
			}
		}
	}
	if !l.host.PublicIP.IsValid() {
		return fmt.Errorf("instance %s is running without a public ip: use a public subnet", l.host.InstanceID)
	}
	return nil
}

// tagSpecs tags resources of these types with the run's tags at creation, which is what IAM's
// aws:RequestTag conditions check.
func tagSpecs(run runtag.Run, kinds ...types.ResourceType) []types.TagSpecification {
	return tagSpecsNamed(run, run.ResourceName(), kinds...)
}

// tagSpecsNamed is tagSpecs with name as the Name tag (a fleet's further hosts, its groups).
func tagSpecsNamed(run runtag.Run, name string, kinds ...types.ResourceType) []types.TagSpecification {
	var tags []types.Tag
	for _, t := range run.Tags() {
		if t.Key == runtag.KeyName {
			t.Value = name
		}
		tags = append(tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	var specs []types.TagSpecification
	for _, k := range kinds {
		specs = append(specs, types.TagSpecification{ResourceType: k, Tags: tags})
	}
	return specs
}
