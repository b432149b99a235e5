package ssm_test

import (
	"testing"

	"github.com/deploydrill/deploydrill/infra/ssm"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

func TestUbuntuAMI(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(d *awsdouble.Double)
		want    string
		wantErr bool
	}{
		{"the public parameter names the current image", func(*awsdouble.Double) {}, awsdouble.UbuntuAMI, false},
		{"a missing parameter is an error naming it", func(d *awsdouble.Double) { d.SetParameter(awsdouble.UbuntuAMIParameter, "") }, "", true},
		{"throttling is retried", func(d *awsdouble.Double) {
			d.Inject(awsdouble.Fault{Op: "ssm:GetParameter", Times: 2, Code: "ThrottlingException"})
		}, awsdouble.UbuntuAMI, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := awsdouble.New(awsdouble.Options{})
			defer d.Close()
			tt.prepare(d)
			got, err := ssm.NewFromConfig(d.Config()).UbuntuAMI(t.Context())
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("UbuntuAMI() = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
