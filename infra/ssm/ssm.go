// Package ssm reads SSM's public parameters: where Canonical publishes the current Ubuntu AMI.
package ssm

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// UbuntuNobleAMIParameter names the latest Ubuntu 24.04 LTS amd64 gp3 AMI in the caller's region.
const UbuntuNobleAMIParameter = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"

// api is the part of *ssm.Client this package uses.
type api interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ api = (*ssm.Client)(nil)

// Parameters reads public parameters.
type Parameters struct{ api api }

// New wraps an SSM client.
func New(c api) *Parameters { return &Parameters{api: c} }

// NewFromConfig builds the client from an SDK configuration.
func NewFromConfig(cfg aws.Config) *Parameters { return New(ssm.NewFromConfig(cfg)) }

// UbuntuAMI returns the AMI id Canonical currently publishes for Ubuntu 24.04 LTS amd64.
func (p *Parameters) UbuntuAMI(ctx context.Context) (string, error) {
	out, err := p.api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(UbuntuNobleAMIParameter)})
	if err != nil {
		return "", fmt.Errorf("read ssm parameter %s: %w", UbuntuNobleAMIParameter, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", fmt.Errorf("read ssm parameter %s: empty value", UbuntuNobleAMIParameter)
	}
	return aws.ToString(out.Parameter.Value), nil
}
