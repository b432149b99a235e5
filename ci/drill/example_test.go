package drill_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/probe"
)

// Run is wired by the CLI: a target, the HTTP prober, the inventory and a progress sink.
func ExampleRun() {
	ctx := context.Background()
	var target drill.Target       // e.g. the local Dagger target
	var inventory drill.Inventory // e.g. the local image store
	v := drill.Image{Ref: "flask-app@sha256:...", Tag: "a1b2c3d", Version: "a1b2c3d"}

	res, err := drill.Run(ctx, drill.Config{
		Image:        v,
		Windows:      drill.Windows{Live: 2 * time.Second, Outage: 2 * time.Second, Recovery: 2 * time.Second},
		Interval:     100 * time.Millisecond,
		AutoRollback: true,
		RollbackTo:   "", // or a tag to roll back to
	}, drill.Deps{
		Target:    target,
		Prober:    probe.New(0),
		Inventory: inventory,
		Events:    drill.LineWriter(os.Stderr),
		TeardownContext: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		},
	})
	if res == nil {
		fmt.Println("bad input:", err)
		return
	}
	f := drill.ComputeFigures(res)
	fmt.Println(res.Passed(), f.TimeToDetect, f.TimeToRecover)
}
