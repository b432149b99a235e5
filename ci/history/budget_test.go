package history_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/history"
)

const day = 24 * time.Hour

func TestBudgetAllowed(t *testing.T) {
	tests := []struct {
		name   string
		budget history.Budget
		want   time.Duration
	}{
		{"99.9% over 30 days allows 43.2 minutes", history.Budget{SLO: 99.9, Window: 30 * day}, 2592 * time.Second},
		{"99.95% over 30 days allows 21.6 minutes", history.Budget{SLO: 99.95, Window: 30 * day}, 1296 * time.Second},
		{"99% over 7 days allows 100.8 minutes", history.Budget{SLO: 99, Window: 7 * day}, 6048 * time.Second},
		{"90% over 12 hours allows 72 minutes", history.Budget{SLO: 90, Window: 12 * time.Hour}, 72 * time.Minute},
		{"99.99% over a year allows 52.56 minutes", history.Budget{SLO: 99.99, Window: 365 * day}, 3153600 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.budget.Allowed(); got != tt.want {
				t.Errorf("allowed %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBudgetUse(t *testing.T) {
	b := history.Budget{SLO: 99.9, Window: 30 * day} // 2592 s
	tests := []struct {
		name     string
		downtime time.Duration
		use      float64
		describe string
	}{
		{"a short outage uses a sliver", 7 * time.Second, 7.0 / 2592, "7.0 s of 43.2 min, 0.27%"},
		{"half the budget", 1296 * time.Second, 0.5, "21.6 min of 43.2 min, 50.00%"},
		{"the whole budget", 2592 * time.Second, 1, "43.2 min of 43.2 min, 100.00%"},
		{"more than the budget", 5184 * time.Second, 2, "86.4 min of 43.2 min, 200.00%"},
		{"no downtime", 0, 0, "0 ms of 43.2 min, 0.00%"},
		{"under a second", 850 * time.Millisecond, 0.85 / 2592, "850 ms of 43.2 min, 0.03%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Use(tt.downtime); math.Abs(got-tt.use) > 1e-12 {
				t.Errorf("use %v, want %v", got, tt.use)
			}
			if got := b.Describe(tt.downtime); got != tt.describe {
				t.Errorf("describe %q, want %q", got, tt.describe)
			}
		})
	}
	if got, want := b.String(), "99.9% over 30d (43.2 min)"; got != want {
		t.Errorf("String %q, want %q", got, want)
	}
	if got := (history.Budget{}).Use(time.Second); got != 0 {
		t.Errorf("an invalid budget used %v, want 0", got)
	}
}

func TestBudgetValidate(t *testing.T) {
	tests := []struct {
		name   string
		budget history.Budget
		want   string // "" is valid
	}{
		{"99.9% over 30 days", history.Budget{SLO: 99.9, Window: 30 * day}, ""},
		{"a tiny SLO is still an SLO", history.Budget{SLO: 0.001, Window: time.Hour}, ""},
		{"0% is no objective", history.Budget{SLO: 0, Window: 30 * day}, "SLO 0% is not between 0% and 100%"},
		{"100% leaves no budget", history.Budget{SLO: 100, Window: 30 * day}, "SLO 100% is not between"},
		{"a negative SLO", history.Budget{SLO: -1, Window: 30 * day}, "SLO -1%"},
		{"above 100%", history.Budget{SLO: 101, Window: 30 * day}, "SLO 101%"},
		{"NaN", history.Budget{SLO: math.NaN(), Window: 30 * day}, "SLO NaN%"},
		{"no window", history.Budget{SLO: 99.9}, "window 0s is not positive"},
		{"a negative window", history.Budget{SLO: 99.9, Window: -time.Hour}, "window -1h0m0s is not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.budget.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"30d", 30 * day, ""},
		{"7d", 7 * day, ""},
		{"12h", 12 * time.Hour, ""},
		{"90m", 90 * time.Minute, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"", 0, "not positive"},
		{"0d", 0, "not positive"},
		{"30", 0, "want a duration like 30d"},
		{"d", 0, "want a duration like 30d"},
		{"-1d", 0, "want a duration like 30d"},
		{"1d-2h", 0, "want a duration like 30d"},
		{"30x", 0, "want a duration like 30d"},
	}
	for _, tt := range tests {
		t.Run("window "+tt.in, func(t *testing.T) {
			got, err := history.ParseWindow(tt.in)
			if tt.err == "" && (err != nil || got != tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("got %v, %v; want an error saying %q", got, err, tt.err)
			}
		})
	}
	for d, want := range map[time.Duration]string{30 * day: "30d", 36 * time.Hour: "1d12h0m0s", 12 * time.Hour: "12h0m0s"} {
		if got := history.FormatWindow(d); got != want {
			t.Errorf("FormatWindow(%v) = %q, want %q", d, got, want)
		}
		if back, err := history.ParseWindow(history.FormatWindow(d)); err != nil || back != d {
			t.Errorf("ParseWindow(FormatWindow(%v)) = %v, %v", d, back, err)
		}
	}
}
