package awsdouble_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

func start(t *testing.T, o awsdouble.Options) *awsdouble.Double {
	t.Helper()
	d := awsdouble.New(o)
	t.Cleanup(d.Close)
	return d
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func publicKey(t *testing.T) []byte {
	t.Helper()
	s, _ := testenv.SSHKey(t)
	return ssh.MarshalAuthorizedKey(s.PublicKey())
}

// launch creates a key pair, a group and one instance the way the tool does.
func launch(t *testing.T, ctx context.Context, c *ec2.Client) (instanceID, groupID string) {
	t.Helper()
	tags := []types.Tag{{Key: aws.String("run"), Value: aws.String("r1")}}
	if _, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("k1"), PublicKeyMaterial: publicKey(t),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeKeyPair, Tags: tags}}}); err != nil {
		t.Fatalf("import key pair: %v", err)
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("g1"), Description: aws.String("test"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: tags}}})
	if err != nil {
		t.Fatalf("create security group: %v", err)
	}
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(awsdouble.UbuntuAMI), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		KeyName: aws.String("k1"), ClientToken: aws.String("tok-1"),
		UserData:                          aws.String(base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		MetadataOptions:                   &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired},
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0),
			AssociatePublicIpAddress: aws.Bool(true), Groups: []string{*sg.GroupId}}},
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{
			VolumeType: types.VolumeTypeGp3, Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true), VolumeSize: aws.Int32(10)}}},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}, {ResourceType: types.ResourceTypeVolume, Tags: tags}},
	})
	if err != nil {
		t.Fatalf("run instances: %v", err)
	}
	if got := out.Instances[0].State.Name; got != types.InstanceStateNamePending {
		t.Fatalf("RunInstances answered state %s, want pending", got)
	}
	return *out.Instances[0].InstanceId, *sg.GroupId
}

func TestInstanceLifeCycleFollowsAWS(t *testing.T) {
	d := start(t, awsdouble.Options{PendingDescribes: 2, ShuttingDownDescribes: 2, NotFoundCalls: 1, DependencyAttempts: 2})
	c := ec2.NewFromConfig(d.Config())
	ctx := t.Context()
	id, sg := launch(t, ctx, c)

	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if errorCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("describe right after launch: got %v, want InvalidInstanceID.NotFound", err)
	}
	var states []types.InstanceStateName
	for range 3 {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, out.Reservations[0].Instances[0].State.Name)
	}
	if want := []types.InstanceStateName{"pending", "pending", "running"}; !equal(states, want) {
		t.Fatalf("states %v, want %v", states, want)
	}

	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sg)})
	if errorCode(err) != "DependencyViolation" {
		t.Fatalf("delete group in use: got %v, want DependencyViolation", err)
	}
	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameShuttingDown {
		t.Fatalf("terminate: %v %+v", err, term)
	}
	w := ec2.NewInstanceTerminatedWaiter(c, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Millisecond, time.Millisecond
	})
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 10*time.Second); err != nil {
		t.Fatalf("terminated waiter: %v", err)
	}
	for i := range 2 {
		if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sg)}); errorCode(err) != "DependencyViolation" {
			t.Fatalf("delete attempt %d after termination: got %v, want DependencyViolation", i+1, err)
		}
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(sg)}); err != nil {
		t.Fatalf("third delete after termination: %v", err)
	}
	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("k1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("k1")}); err != nil {
		t.Fatalf("deleting a missing key pair must succeed as on AWS: %v", err)
	}
	if left := d.Leftovers("run", "r1"); len(left) != 0 {
		t.Fatalf("leftovers: %v", left)
	}
}

func TestRunInstancesRecordsWhatWasAskedFor(t *testing.T) {
	d := start(t, awsdouble.Options{})
	var seen []byte
	d.OnRunInstances = func(id string, userData []byte) (string, error) { seen = userData; return "127.0.0.9", nil }
	c := ec2.NewFromConfig(d.Config())
	id, sg := launch(t, t.Context(), c)
	got := d.Instances()[0]
	if got.ID != id || string(got.UserData) != "#cloud-config\n" || string(seen) != "#cloud-config\n" {
		t.Errorf("user-data not recorded: %+v / hook saw %q", got, seen)
	}
	if got.PublicIP != "127.0.0.9" || got.HTTPTokens != "required" || got.ShutdownBehavior != "terminate" || got.SecurityGroups[0] != sg {
		t.Errorf("instance = %+v", got)
	}
	if v := got.Volumes[0]; v.Type != "gp3" || !v.Encrypted || !v.DeleteOnTermination || v.SizeGiB != 10 || v.Tags["run"] != "r1" {
		t.Errorf("root volume = %+v", v)
	}
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || aws.ToString(out.Reservations[0].Instances[0].PublicIpAddress) != "127.0.0.9" {
		t.Errorf("describe: %v, %+v", err, out)
	}
}

func TestRunInstancesIsIdempotentPerClientToken(t *testing.T) {
	d := start(t, awsdouble.Options{})
	c := ec2.NewFromConfig(d.Config())
	id, sg := launch(t, t.Context(), c)
	again, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String(awsdouble.UbuntuAMI), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ClientToken: aws.String("tok-1"), SecurityGroupIds: []string{sg}})
	if err != nil || *again.Instances[0].InstanceId != id || len(d.Instances()) != 1 {
		t.Fatalf("replay with the same client token: %v, got %v, want %s and one instance", err, again, id)
	}
}

func TestEC2RefusesWhatAWSRefuses(t *testing.T) {
	d := start(t, awsdouble.Options{})
	c := ec2.NewFromConfig(d.Config())
	ctx := t.Context()
	run := func(in *ec2.RunInstancesInput) error {
		in.MinCount, in.MaxCount = aws.Int32(1), aws.Int32(1)
		if in.ImageId == nil {
			in.ImageId = aws.String(awsdouble.UbuntuAMI)
		}
		_, err := c.RunInstances(ctx, in)
		return err
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"an unknown key pair", func() error { return run(&ec2.RunInstancesInput{KeyName: aws.String("nope")}) }, "InvalidKeyPair.NotFound"},
		{"an unknown image", func() error { return run(&ec2.RunInstancesInput{ImageId: aws.String("ami-0000000000000dead")}) }, "InvalidAMIID.NotFound"},
		{"an unknown security group", func() error { return run(&ec2.RunInstancesInput{SecurityGroupIds: []string{"sg-0000000000000dead"}}) }, "InvalidGroup.NotFound"},
		{"an unknown instance type", func() error { return run(&ec2.RunInstancesInput{InstanceType: "t9.huge"}) }, "InvalidParameterValue"},
		{"an untaggable resource type at launch", func() error {
			return run(&ec2.RunInstancesInput{TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}})
		}, "InvalidParameterValue"},
		{"an unknown filter name", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tagg:x"), Values: []string{"y"}}}})
			return err
		}, "InvalidParameterValue"},
		{"terminating an unknown instance", func() error {
			_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-00000000000000dead"}})
			return err
		}, "InvalidInstanceID.NotFound"},
		{"deleting an unknown group", func() error {
			_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String("sg-0000000000000dead")})
			return err
		}, "InvalidGroup.NotFound"},
		{"deleting the default group", func() error {
			_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupName: aws.String("default")})
			return err
		}, "CannotDelete"},
		{"a second group of the same name", func() error {
			for range 2 {
				if _, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("dup"), Description: aws.String("x")}); err != nil {
					return err
				}
			}
			return nil
		}, "InvalidGroup.Duplicate"},
		{"a malformed public key", func() error {
			_, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("bad"), PublicKeyMaterial: []byte("ssh-ed25519 nope")})
			return err
		}, "InvalidKey.Format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorCode(tt.call()); got != tt.code {
				t.Errorf("got %q, want %s", got, tt.code)
			}
		})
	}
	if n := len(d.Instances()); n != 0 {
		t.Errorf("refused launches created %d instances", n)
	}
}

func TestThrottlingIsAbsorbedByTheSDKRetryer(t *testing.T) {
	d := start(t, awsdouble.Options{Throttle: 0.4, Seed: 7})
	c := ec2.NewFromConfig(d.Config())
	for range 20 {
		if _, err := c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{}); err != nil {
			t.Fatalf("describe vpcs through throttling: %v", err)
		}
	}
	if n := len(d.Operations()); n <= 20 {
		t.Errorf("served %d calls for 20 requests: throttling never happened", n)
	}
}

func TestFaultsHitTheChosenCalls(t *testing.T) {
	d := start(t, awsdouble.Options{})
	d.Inject(awsdouble.Fault{Op: "ec2:DescribeVpcs", Skip: 1, Times: 1, Code: "UnauthorizedOperation", Status: http.StatusForbidden})
	c := ec2.NewFromConfig(d.Config())
	var codes []string
	for range 3 {
		_, err := c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
		codes = append(codes, errorCode(err))
	}
	if want := []string{"", "UnauthorizedOperation", ""}; !equal(codes, want) {
		t.Errorf("codes %q, want %q", codes, want)
	}
}

func TestAfterOpCanLoseTheAnswer(t *testing.T) {
	d := start(t, awsdouble.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	d.AfterOp = func(op string, r *http.Request) {
		if op == "ec2:CreateSecurityGroup" {
			cancel()
			<-r.Context().Done()
		}
	}
	c := ec2.NewFromConfig(d.Config())
	_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("lost"), Description: aws.String("x")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	found := false
	for _, g := range d.SecurityGroups() {
		found = found || g.Name == "lost"
	}
	if !found {
		t.Error("the group whose answer was lost was not created")
	}
}

func TestPowerOffTerminatesWhenAskedTo(t *testing.T) {
	d := start(t, awsdouble.Options{ShuttingDownDescribes: 1})
	c := ec2.NewFromConfig(d.Config())
	id, _ := launch(t, t.Context(), c)
	if err := d.PowerOff(id); err != nil {
		t.Fatal(err)
	}
	d.Settle()
	if got := d.Instances()[0]; got.State != "terminated" || len(got.Volumes) != 0 {
		t.Errorf("after power-off: %+v", got)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStallHangsCallsUntilReleasedOrAbandoned(t *testing.T) {
	d := start(t, awsdouble.Options{})
	c := ec2.NewFromConfig(d.Config())
	stalled, release := d.Stall("ec2:DescribeVpcs")

	t.Run("a client that gives up gets its own context's error and nothing is served", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-stalled; cancel() }()
		if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if ops := d.Operations(); len(ops) != 0 {
			t.Errorf("served %v while stalled", ops)
		}
	})
	t.Run("other operations are not stalled", func(t *testing.T) {
		if _, err := c.DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a released call is served", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			_, err := c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
			done <- err
		}()
		<-stalled
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyPairsCarryTagsAndFilterOnThem(t *testing.T) {
	d := start(t, awsdouble.Options{})
	c := ec2.NewFromConfig(d.Config())
	ctx := t.Context()
	launch(t, ctx, c) // k1, tagged run=r1
	if err := d.ImportKeyPair("k2", nil); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: aws.String("tag:run"), Values: []string{"r1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.KeyPairs) != 1 || aws.ToString(out.KeyPairs[0].KeyName) != "k1" || len(out.KeyPairs[0].Tags) != 1 {
		t.Fatalf("filtered on tag:run=r1: %+v, want k1 with its tag", out.KeyPairs)
	}
	all, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil || len(all.KeyPairs) != 2 {
		t.Fatalf("unfiltered: %v, %v", all, err)
	}
	k2 := all.KeyPairs[1]
	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyPairId: out.KeyPairs[0].KeyPairId}); err != nil {
		t.Fatal(err)
	}
	if keys := d.KeyPairs(); len(keys) != 1 || keys[0].Name != "k2" || keys[0].ID != aws.ToString(k2.KeyPairId) {
		t.Errorf("after deleting k1 by id: %+v", keys)
	}
}
