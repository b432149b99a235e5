package ec2_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/deploydrill/deploydrill/infra/ec2"
)

func TestHostSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*ec2.HostSpec)
		ok   bool
	}{
		{"the defaults", func(*ec2.HostSpec) {}, true},
		{"a 17-digit ami and subnet", func(s *ec2.HostSpec) { s.AMI, s.SubnetID = "ami-0123456789abcdef0", "subnet-0123456789abcdef0" }, true},
		{"an 8-digit ami and subnet", func(s *ec2.HostSpec) { s.AMI, s.SubnetID = "ami-0123abcd", "subnet-0123abcd" }, true},
		{"an instance type with a dash in its family", func(s *ec2.HostSpec) { s.InstanceType = "m7i-flex.large" }, true},
		{"an ami in capitals", func(s *ec2.HostSpec) { s.AMI = "ami-0123ABCD" }, false},
		{"a subnet id passed as an ami", func(s *ec2.HostSpec) { s.AMI = "subnet-0123abcd" }, false},
		{"a vpc id passed as a subnet", func(s *ec2.HostSpec) { s.SubnetID = "vpc-0123abcd" }, false},
		{"an instance type without a size", func(s *ec2.HostSpec) { s.InstanceType = "t3" }, false},
		{"an http cidr with host bits", func(s *ec2.HostSpec) { s.HTTPCIDR = netip.MustParsePrefix("192.0.2.1/24") }, false},
		{"a run without an id", func(s *ec2.HostSpec) { s.Run.ID = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ec2.HostSpec{Run: testRun("r1")}
			tt.edit(&spec)
			err := spec.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ec2.ErrInvalidSpec)) {
				t.Errorf("Validate = %v, want ok %v (and ErrInvalidSpec otherwise)", err, tt.ok)
			}
		})
	}
}
