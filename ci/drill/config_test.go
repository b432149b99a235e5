package drill_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

func TestConfigNormalize(t *testing.T) {
	v := image("v2")
	tests := []struct {
		name  string
		in    drill.Config
		check func(t *testing.T, c drill.Config)
		err   string
	}{
		{name: "zero fields take the defaults", in: drill.Config{Image: v}, check: func(t *testing.T, c drill.Config) {
			want := drill.Config{Image: v, Windows: drill.Windows{Live: time.Minute, Outage: time.Minute, Recovery: time.Minute},
				Interval: time.Second, ProbeTimeout: time.Second, ReadyTimeout: time.Minute, FailuresToRollback: 3}
			if c.Windows != want.Windows || c.Interval != want.Interval || c.ProbeTimeout != want.ProbeTimeout ||
				c.ReadyTimeout != want.ReadyTimeout || c.FailuresToRollback != want.FailuresToRollback {
				t.Errorf("got %+v, want %+v", c, want)
			}
		}},
		{name: "the probe timeout is capped at the interval", in: drill.Config{Image: v, Interval: 100 * time.Millisecond}, check: func(t *testing.T, c drill.Config) {
			if c.ProbeTimeout != 100*time.Millisecond {
				t.Errorf("probe timeout %v", c.ProbeTimeout)
			}
		}},
		{name: "settings are kept", in: drill.Config{Image: v, Windows: drill.Windows{Live: 2 * time.Second, Outage: 3 * time.Second, Recovery: 4 * time.Second},
			Interval: 250 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond, AutoRollback: true, FailuresToRollback: 5, RollbackTo: "abc1234"},
			check: func(t *testing.T, c drill.Config) {
				if c.Windows.Outage != 3*time.Second || c.ProbeTimeout != 200*time.Millisecond || c.FailuresToRollback != 5 || c.RollbackTo != "abc1234" {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "an interval under 100ms is refused", in: drill.Config{Image: v, Interval: 50 * time.Millisecond}, err: "probe interval 50ms: must be at least 100ms"},
		{name: "a negative window is refused", in: drill.Config{Image: v, Windows: drill.Windows{Outage: -time.Second}}, err: "outage window -1s: must be positive"},
		{name: "a window shorter than the interval is refused", in: drill.Config{Image: v, Interval: 2 * time.Second, Windows: drill.Windows{Recovery: time.Second}},
			err: "recovery window 1s: shorter than the probe interval 2s"},
		{name: "a watchdog threshold under one is refused", in: drill.Config{Image: v, FailuresToRollback: -1}, err: "failures to rollback -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Normalize()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}
