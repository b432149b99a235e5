package drill_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// Run is wired by the CLI's lifecycle: the config normalized once when the input is checked, K
// picked once, then a target, the HTTP prober, the inventory and a logger. The lifecycle tears
// down afterwards and records it with RecordTeardown.
func ExampleRun() {
	ctx := context.Background()
	var target drill.Target       // e.g. the local Dagger target
	var inventory drill.Inventory // e.g. the local image store
	v := drill.Image{Ref: "flask-app@sha256:...", Tag: "a1b2c3d", Version: "a1b2c3d"}

	cfg, err := drill.Config{
		Windows:      drill.Windows{Live: 2 * time.Second, Outage: 2 * time.Second, Recovery: 2 * time.Second},
		Interval:     100 * time.Millisecond,
		AutoRollback: true,
		RollbackTo:   "", // or a tag to roll back to
	}.Normalize()
	if err != nil {
		fmt.Println("bad input:", err)
		return
	}
	rollback, err := drill.PickRollback(ctx, inventory, drill.Image{Tag: v.Tag}, cfg.RollbackTo)
	if err != nil {
		fmt.Println("no rollback image:", err)
		return
	}
	cfg.Image, cfg.Rollback = v, rollback.For(v)
	res, err := drill.Run(ctx, cfg, drill.Deps{
		Target:    target,
		Prober:    probe.New(0),
		Inventory: inventory,
		Log:       slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if res == nil {
		fmt.Println("bad input:", err)
		return
	}
	f := drill.ComputeFigures(res)
	fmt.Println(res.Passed(), f.TimeToDetect, f.TimeToRecover)
}
