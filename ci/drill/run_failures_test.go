package drill_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

func TestRunFailures(t *testing.T) {
	P, F, N := drill.Passed, drill.Failed, drill.NotRun
	tests := []struct {
		name    string
		setup   func(h *harness)
		ctx     func(ctx context.Context) (context.Context, context.CancelFunc)
		wantErr []string // substrings of the returned error; none means nil
		want    map[drill.Phase]drill.Status
		calls   []string
		message map[drill.Phase]string // substrings of expectation messages
		warning string
		trigger string
	}{{
		name:    "a stop that leaves the service up fails the outage and the drill goes on",
		setup:   func(h *harness) { h.target.stopIgnored = true },
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": F, "rollback": P, "recovery": P},
		calls:   []string{"deploy v2", "stop", "deploy v1"},
		message: map[drill.Phase]string{"outage": `10 of 10 probes after stop did not show its symptoms (refused, reset): ok ×10; the first 997ms into the window: ok (version v2)`},
	}, {
		name: "a new version that never becomes healthy fails deploy and live, and the rollback still runs",
		setup: func(h *harness) {
			h.target.boots = map[string]time.Duration{"v2": time.Hour}
			h.cfg.ReadyTimeout = 5500 * time.Millisecond // readiness probes every 51 ms (a refusal and the grain): 108 by 5.5 s
		},
		want:    map[drill.Phase]drill.Status{"deploy": F, "live": F, "outage": P, "rollback": P, "recovery": P},
		calls:   []string{"deploy v2", "stop", "deploy v1"},
		message: map[drill.Phase]string{"deploy": "v2 not healthy within 5.5s: 108 probes, the last refused", "live": "10 of 10 probes failed (refused ×10)"},
	}, {
		name:    "a failed rollback deploy stops the drill",
		setup:   func(h *harness) { h.target.deployErr = map[string]error{"v1": errors.New("port 8080 in use")} },
		wantErr: []string{"rollback: deploy v1: port 8080 in use"},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": P, "rollback": F, "recovery": N},
		calls:   []string{"deploy v2", "stop", "deploy v1"},
		message: map[drill.Phase]string{"rollback": "port 8080 in use"},
	}, {
		name:    "a stop error fails the outage",
		setup:   func(h *harness) { h.target.stopErr = errors.New("container not found") },
		wantErr: []string{"stop v2: container not found"},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": F, "rollback": N, "recovery": N},
		calls:   []string{"deploy v2", "stop"},
	}, {
		name: "an interrupt stops the drill with its cause",
		ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancelCause(ctx)
			time.AfterFunc(7*time.Second, func() { cancel(errors.New("received interrupt")) })
			return ctx, func() { cancel(nil) }
		},
		wantErr: []string{"interrupted during live: received interrupt"},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": F, "outage": N, "rollback": N, "recovery": N},
		calls:   []string{"deploy v2"},
	}, {
		name: "a deadline says timed out",
		ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 23*time.Second)
		},
		wantErr: []string{"timed out during rollback"},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": P, "rollback": F, "recovery": N},
		calls:   []string{"deploy v2", "stop", "deploy v1"},
	}, {
		name:    "failing to mark V verified is a warning",
		setup:   func(h *harness) { h.inv.markErr = errors.New("tag exists") },
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": P, "rollback": P, "recovery": P},
		calls:   []string{"deploy v2", "stop", "deploy v1"},
		warning: "mark v2 verified: tag exists",
	}, {
		name: "failing to prepare K is a warning",
		setup: func(h *harness) {
			h.prepare = true
			h.target.prepareErr = errors.New("pull failed")
		},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": P, "rollback": P, "recovery": P},
		calls:   []string{"deploy v2", "prepare v1", "stop", "deploy v1"},
		warning: "prepare v1: pull failed (the rollback will fetch it)",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness()
				if tt.setup != nil {
					tt.setup(h)
				}
				ctx, cancel := t.Context(), context.CancelFunc(func() {})
				if tt.ctx != nil {
					ctx, cancel = tt.ctx(ctx)
				}
				defer cancel()
				res, err := h.run(ctx)
				if res == nil {
					t.Fatalf("no result (err %v): the report needs one", err)
				}
				checkErr(t, err, tt.wantErr)
				if len(tt.wantErr) > 0 && (res.Error == "" || !strings.Contains(err.Error(), res.Error)) {
					t.Errorf("result error %q, want it to carry the drill's error", res.Error)
				}
				for p, want := range tt.want {
					if got := expectations(res)[p]; got != want {
						t.Errorf("%s: %s, want %s", p, got, want)
					}
				}
				for p, want := range tt.message {
					for _, e := range res.Expectations {
						if e.Phase == p && !strings.Contains(e.Message, want) {
							t.Errorf("%s message %q, want it to contain %q", p, e.Message, want)
						}
					}
				}
				checkCalls(t, h.target.Calls(), tt.calls...)
				if res.Passed() {
					if tt.warning == "" {
						t.Error("drill passed, want it failed")
					}
				}
				if tt.warning != "" && (len(res.Warnings) != 1 || res.Warnings[0] != tt.warning) {
					t.Errorf("warnings %q, want %q", res.Warnings, tt.warning)
				}
				if tt.trigger != "" && res.RollbackTrigger != tt.trigger {
					t.Errorf("rollback trigger %q, want %q", res.RollbackTrigger, tt.trigger)
				}
				if m := res.Marks[len(res.Marks)-2]; m.End.IsZero() {
					t.Errorf("last drill mark %+v, want it finished", m)
				}
			})
		})
	}
}

func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("run: no error, want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q, want it to contain %q", err, w)
		}
	}
}

func TestPickRollbackFailsBeforeAnythingIsDeployed(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *harness)
		wantErr string
	}{
		{"an unknown rollback tag", func(h *harness) { h.cfg.RollbackTo = "nope" }, `rollback to "nope": no such image in the inventory (have v2, v1b, v1, v0)`},
		{"a rollback tag without an inventory", func(h *harness) { h.noInventory = true; h.cfg.RollbackTo = "v1" }, `rollback to "v1": no inventory to find it in`},
		{"an unreadable inventory", func(h *harness) { h.inv.listErr = errors.New("permission denied") }, "list inventory: permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness()
				tt.setup(h)
				res, err := h.run(t.Context())
				if res != nil || err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run = %v, %v; want no result and %q", res, err, tt.wantErr)
				}
				checkCalls(t, h.target.Calls())
			})
		})
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	cfg, err := drill.Config{Image: image("v2"), Rollback: drill.Rollback{Image: image("v1")}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drill.Run(t.Context(), cfg, drill.Deps{}); err == nil || !strings.Contains(err.Error(), "target and a prober") {
		t.Errorf("missing deps: %v", err)
	}
	normalized, _ := drill.Config{}.Normalize()
	if _, err := drill.Run(t.Context(), normalized, drill.Deps{}); err == nil || !strings.Contains(err.Error(), "image V") || !strings.Contains(err.Error(), "rollback image K") {
		t.Errorf("missing images: %v", err)
	}
	if _, err := drill.Run(t.Context(), drill.Config{Image: image("v2"), Rollback: drill.Rollback{Image: image("v1")}}, drill.Deps{}); err == nil || !strings.Contains(err.Error(), "not normalized") {
		t.Errorf("a config that skipped Normalize: %v", err)
	}
}
