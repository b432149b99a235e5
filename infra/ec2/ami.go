package ec2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Canonical publishes the official Ubuntu images from this account.
const (
	CanonicalOwner   = "099720109477"
	ubuntuNameFilter = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
)

// image is what launching needs to know about an AMI.
type image struct {
	id, name, rootDevice string
}

// resolveAMI picks the image: the override, else SSM's public parameter, else the newest
// matching Canonical image. It always describes the chosen image, so a bad --ami fails here
// with a clear error and the root volume mapping uses the image's own root device name.
func (h *Hosts) resolveAMI(ctx context.Context, override string) (image, error) {
	id := override
	if id == "" && h.amis != nil {
		var err error
		id, err = h.amis.UbuntuAMI(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return image{}, err
			}
			h.log.Info("ami lookup through ssm failed; falling back to DescribeImages", "error", err.Error())
			id = ""
		}
	}
	if id == "" {
		return h.newestUbuntu(ctx)
	}
	out, err := h.api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		if strings.HasPrefix(errorCode(err), "InvalidAMIID.") {
			return image{}, fmt.Errorf("ami %s: not found in this region: %w", id, err)
		}
		return image{}, fmt.Errorf("describe ami %s: %w", id, err)
	}
	if len(out.Images) == 0 {
		return image{}, fmt.Errorf("ami %s: not found in this region", id)
	}
	img := out.Images[0]
	if img.Architecture != types.ArchitectureValuesX8664 {
		return image{}, fmt.Errorf("ami %s: architecture %s, want x86_64 (the Docker images are built for amd64)", id, img.Architecture)
	}
	return image{id: id, name: aws.ToString(img.Name), rootDevice: aws.ToString(img.RootDeviceName)}, nil
}

func (h *Hosts) newestUbuntu(ctx context.Context) (image, error) {
	out, err := h.api.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{CanonicalOwner},
		Filters: []types.Filter{
			{Name: aws.String("name"), Values: []string{ubuntuNameFilter}},
			{Name: aws.String("state"), Values: []string{"available"}},
			{Name: aws.String("architecture"), Values: []string{"x86_64"}},
		},
	})
	if err != nil {
		return image{}, fmt.Errorf("describe ubuntu images: %w", err)
	}
	imgs := out.Images
	if len(imgs) == 0 {
		return image{}, errors.New("describe ubuntu images: no Ubuntu 24.04 amd64 image from Canonical in this region; pass --ami")
	}
	// CreationDate is ISO 8601, so text order is time order.
	newest := slices.MaxFunc(imgs, func(a, b types.Image) int {
		return strings.Compare(aws.ToString(a.CreationDate), aws.ToString(b.CreationDate))
	})
	return image{id: aws.ToString(newest.ImageId), name: aws.ToString(newest.Name), rootDevice: aws.ToString(newest.RootDeviceName)}, nil
}

// subnet is where the instance goes.
type subnet struct{ id, vpcID string }

// pickSubnet returns the given subnet, else the default VPC's first default subnet.
func (h *Hosts) pickSubnet(ctx context.Context, id string) (subnet, error) {
	if id != "" {
		out, err := h.api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{id}})
		if err != nil {
			return subnet{}, fmt.Errorf("describe subnet %s: %w", id, err)
		}
		if len(out.Subnets) == 0 {
			return subnet{}, fmt.Errorf("subnet %s: not found", id)
		}
		return subnet{id: id, vpcID: aws.ToString(out.Subnets[0].VpcId)}, nil
	}
	vpcID, err := h.defaultVPC(ctx, "pass --subnet-id of a public subnet")
	if err != nil {
		return subnet{}, err
	}
	subs, err := h.defaultSubnets(ctx, vpcID)
	if err != nil {
		return subnet{}, err
	}
	if len(subs) == 0 {
		return subnet{}, fmt.Errorf("find default subnet of %s: none; pass --subnet-id", vpcID)
	}
	// The first zone by name, so repeated runs land in the same place.
	return subnet{id: aws.ToString(subs[0].SubnetId), vpcID: vpcID}, nil
}

// defaultVPC is the region's default VPC; hint says what to do when there is none.
func (h *Hosts) defaultVPC(ctx context.Context, hint string) (string, error) {
	vpcs, err := h.api.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil {
		return "", fmt.Errorf("find default vpc: %w", err)
	}
	if len(vpcs.Vpcs) == 0 {
		return "", errors.New("find default vpc: this region has none; " + hint)
	}
	return aws.ToString(vpcs.Vpcs[0].VpcId), nil
}

// defaultSubnets are a VPC's default-for-AZ subnets (one per zone), by zone name.
func (h *Hosts) defaultSubnets(ctx context.Context, vpcID string) ([]types.Subnet, error) {
	subs, err := h.api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		{Name: aws.String("default-for-az"), Values: []string{"true"}},
	}})
	if err != nil {
		return nil, fmt.Errorf("find default subnets of %s: %w", vpcID, err)
	}
	out := slices.Clone(subs.Subnets)
	slices.SortFunc(out, func(a, b types.Subnet) int {
		return strings.Compare(aws.ToString(a.AvailabilityZone), aws.ToString(b.AvailabilityZone))
	})
	return out, nil
}
