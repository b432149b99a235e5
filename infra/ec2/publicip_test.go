package ec2_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/deploydrill/deploydrill/infra/ec2"
)

func TestDetectPublicIP(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    string
		wantErr bool
	}{
		{"a bare address with a newline", http.StatusOK, "198.51.100.4\n", "198.51.100.4", false},
		{"an ipv6 address", http.StatusOK, "2001:db8::1", "2001:db8::1", false},
		{"a server error", http.StatusBadGateway, "", "", true},
		{"an answer that is not an address", http.StatusOK, "<html>", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			got, err := ec2.DetectPublicIP(srv.Client(), srv.URL)(t.Context())
			if (err != nil) != tt.wantErr || (err == nil && got.String() != tt.want) {
				t.Fatalf("got %v, %v; want %s (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
