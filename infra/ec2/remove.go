package ec2

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// The deletes below are idempotent: a resource that is already gone counts as deleted.

// RecoverInstance learns the id of an instance whose RunInstances answer was lost (a cancelled
// context, a dropped connection) by replaying the call with the same client token: EC2 returns
// the instance the lost call created. If the lost call never reached EC2 the replay creates the
// instance, which teardown then terminates like any other. It does nothing when the id is known
// or RunInstances was refused.
func (h *Hosts) RecoverInstance(ctx context.Context, host *Host) error {
	if host == nil || host.InstanceID != "" || host.run == nil {
		return nil
	}
	out, err := h.api.RunInstances(ctx, host.run.input)
	if err != nil {
		return fmt.Errorf("recover instance of run %s by client token: %w", host.RunID, err)
	}
	if len(out.Instances) > 0 {
		host.InstanceID = aws.ToString(out.Instances[0].InstanceId)
		host.run = nil
		h.log.Info("instance recovered by client token", "instance", host.InstanceID, "run", host.RunID)
	}
	return nil
}

// Terminate terminates one instance. EC2 may not know a brand-new id yet, so NotFound is
// retried until Timing.Visibility runs out: an id this tool was handed exists.
func (h *Hosts) Terminate(ctx context.Context, id string) error {
	err := h.timing.Visibility.Run(ctx, "instance "+id+" to become visible", func(ctx context.Context) (bool, error) {
		_, err := h.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		if errorCode(err) == "InvalidInstanceID.NotFound" {
			return false, err
		}
		return true, err
	})
	if err != nil {
		return fmt.Errorf("terminate instance %s: %w", id, err)
	}
	return nil
}

// WaitTerminated waits with the SDK's InstanceTerminated waiter until every instance is gone.
func (h *Hosts) WaitTerminated(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	t := h.timing.Terminated
	w := ec2.NewInstanceTerminatedWaiter(h.api, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = t.Initial, t.Max
	})
	err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids}, t.Timeout)
	if err != nil && errorCode(err) != "InvalidInstanceID.NotFound" {
		return fmt.Errorf("wait for %v to terminate (up to %s): %w", ids, t.Timeout, err)
	}
	return nil
}

// DeleteSecurityGroup deletes a group, retrying DependencyViolation (AWS releases the network
// interfaces of a terminated instance late) with backoff until Timing.GroupDelete runs out.
func (h *Hosts) DeleteSecurityGroup(ctx context.Context, id string) error {
	err := h.timing.GroupDelete.Run(ctx, "security group "+id+" to be released", func(ctx context.Context) (bool, error) {
		_, err := h.api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
		switch errorCode(err) {
		case "DependencyViolation":
			return false, err
		case "InvalidGroup.NotFound", "InvalidGroupId.NotFound":
			return true, nil
		}
		return true, err
	})
	if err != nil {
		return fmt.Errorf("delete security group %s: %w", id, err)
	}
	return nil
}

// DeleteKeyPair deletes a key pair by its id, never by name: a name can be reused by a key
// pair this tool did not make. A missing key pair counts as deleted.
func (h *Hosts) DeleteKeyPair(ctx context.Context, id, name string) error {
	if id == "" {
		return fmt.Errorf("delete key pair %s: no key pair id: refusing to delete by name", name)
	}
	_, err := h.api.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyPairId: aws.String(id)})
	if err != nil && errorCode(err) != "InvalidKeyPair.NotFound" {
		return fmt.Errorf("delete key pair %s (%s): %w", name, id, err)
	}
	return nil
}

// DeleteVolume deletes a detached volume (root volumes go with their instance).
func (h *Hosts) DeleteVolume(ctx context.Context, id string) error {
	_, err := h.api.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
	if err != nil && errorCode(err) != "InvalidVolume.NotFound" {
		return fmt.Errorf("delete volume %s: %w", id, err)
	}
	return nil
}
