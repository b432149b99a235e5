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
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": F, "rollback": P, "recovery": P, "teardown": P},
		calls:   []string{"deploy v2", "stop", "deploy v1", "teardown"},
		message: map[drill.Phase]string{"outage": `10 of 10 probes still answered after stop; the first 997ms into the window, version "v2"`},
	}, {
		name: "a new version that never becomes healthy fails deploy and live, and the rollback still runs",
		setup: func(h *harness) {
			h.target.boots = map[string]time.Duration{"v2": time.Hour}
			h.cfg.ReadyTimeout = 5500 * time.Millisecond // off the probe grid, so the last deploy probe is at 5 s
		},
		want:    map[drill.Phase]drill.Status{"deploy": F, "live": F, "outage": P, "rollback": P, "recovery": P, "teardown": P},
		calls:   []string{"deploy v2", "stop", "deploy v1", "teardown"},
		message: map[drill.Phase]string{"deploy": "v2 not healthy within 5.5s: 6 probes, the last refused", "live": "10 of 10 probes failed (refused ×10)"},
	}, {
		name:    "a failed rollback deploy stops the drill and still tears down",
		setup:   func(h *harness) { h.target.deployErr = map[string]error{"v1": errors.New("port 8080 in use")} },
		wantErr: []string{"rollback: deploy v1: port 8080 in use"},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": P, "rollback": F, "recovery": N, "teardown": P},
		calls:   []string{"deploy v2", "stop", "deploy v1", "teardown"},
		message: map[drill.Phase]string{"rollback": "port 8080 in use"},
	}, {
		name: "a teardown error is reported next to the error that stopped the drill",
		setup: func(h *harness) {
			h.target.deployErr = map[string]error{"v2": errors.New("no space left")}
			h.target.teardownErr = errors.New("tunnel still open")
		},
		wantErr: []string{"deploy v2: no space left", "teardown: tunnel still open"},
		want:    map[drill.Phase]drill.Status{"deploy": F, "live": N, "outage": N, "rollback": N, "recovery": N, "teardown": F},
		calls:   []string{"deploy v2", "teardown"},
	}, {
		name:    "a stop error fails the outage",
		setup:   func(h *harness) { h.target.stopErr = errors.New("container not found") },
		wantErr: []string{"stop v2: container not found"},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": F, "rollback": N, "recovery": N, "teardown": P},
		calls:   []string{"deploy v2", "stop", "teardown"},
	}, {
		name: "an interrupt stops the drill with its cause and teardown gets a fresh context",
		ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancelCause(ctx)
			time.AfterFunc(7*time.Second, func() { cancel(errors.New("received interrupt")) })
			return ctx, func() { cancel(nil) }
		},
		wantErr: []string{"interrupted during live: received interrupt"},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": F, "outage": N, "rollback": N, "recovery": N, "teardown": P},
		calls:   []string{"deploy v2", "teardown"},
	}, {
		name: "a deadline says timed out",
		ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 23*time.Second)
		},
		wantErr: []string{"timed out during rollback"},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": P, "rollback": F, "recovery": N, "teardown": P},
		calls:   []string{"deploy v2", "stop", "deploy v1", "teardown"},
	}, {
		name:    "an unknown rollback tag fails before anything is deployed",
		setup:   func(h *harness) { h.cfg.RollbackTo = "nope" },
		wantErr: []string{`rollback to "nope": no such image in the inventory (have v2, v1b, v1, v0)`},
		want:    map[drill.Phase]drill.Status{"deploy": F, "live": N, "outage": N, "rollback": N, "recovery": N, "teardown": P},
		calls:   []string{"teardown"},
	}, {
		name: "a rollback tag without an inventory fails before anything is deployed",
		setup: func(h *harness) {
			h.noInventory = true
			h.cfg.RollbackTo = "v1"
		},
		wantErr: []string{`rollback to "v1": no inventory to find it in`},
		want:    map[drill.Phase]drill.Status{"deploy": F, "live": N, "outage": N, "rollback": N, "recovery": N, "teardown": P},
		calls:   []string{"teardown"},
	}, {
		name:    "an unreadable inventory fails before anything is deployed",
		setup:   func(h *harness) { h.inv.listErr = errors.New("permission denied") },
		wantErr: []string{"list inventory: permission denied"},
		want:    map[drill.Phase]drill.Status{"deploy": F, "live": N, "outage": N, "rollback": N, "recovery": N, "teardown": P},
		calls:   []string{"teardown"},
	}, {
		name:    "failing to mark V verified is a warning",
		setup:   func(h *harness) { h.inv.markErr = errors.New("tag exists") },
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": P, "rollback": P, "recovery": P, "teardown": P},
		calls:   []string{"deploy v2", "stop", "deploy v1", "teardown"},
		warning: "mark v2 verified: tag exists",
	}, {
		name: "failing to prepare K is a warning",
		setup: func(h *harness) {
			h.prepare = true
			h.target.prepareErr = errors.New("pull failed")
		},
		want:    map[drill.Phase]drill.Status{"deploy": P, "live": P, "outage": P, "rollback": P, "recovery": P, "teardown": P},
		calls:   []string{"deploy v2", "prepare v1", "stop", "deploy v1", "teardown"},
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
				if h.target.teardownCtxErr != nil {
					t.Errorf("teardown got a done context: %v", h.target.teardownCtxErr)
				}
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
				if m := res.Marks[len(res.Marks)-1]; m.Phase != drill.PhaseTeardown || m.End.IsZero() {
					t.Errorf("last mark %+v, want a finished teardown", m)
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

func TestRunUsesTheCallersTeardownContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		type key struct{}
		var made bool
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // the run's context is gone before the drill starts
		res, err := drill.Run(ctx, h.cfg, drill.Deps{
			Target: h.target, Prober: h.prober, Inventory: h.inv, Clock: h.clock,
			TeardownContext: func() (context.Context, context.CancelFunc) {
				made = true
				return context.WithTimeout(context.WithValue(context.Background(), key{}, 1), time.Minute)
			},
		})
		if err == nil || !made || h.target.teardownCtxErr != nil {
			t.Fatalf("err %v, teardown context made %v, its error %v", err, made, h.target.teardownCtxErr)
		}
		checkCalls(t, h.target.Calls(), "teardown")
		if res.Passed() {
			t.Error("an interrupted drill passed")
		}
	})
}

func TestRunRejectsBadInput(t *testing.T) {
	h := &harness{cfg: drill.Config{Image: image("v2")}}
	if _, err := drill.Run(t.Context(), h.cfg, drill.Deps{}); err == nil || !strings.Contains(err.Error(), "target and a prober") {
		t.Errorf("missing deps: %v", err)
	}
	if _, err := drill.Run(t.Context(), drill.Config{}, drill.Deps{}); err == nil || !strings.Contains(err.Error(), "image") {
		t.Errorf("missing image: %v", err)
	}
}
