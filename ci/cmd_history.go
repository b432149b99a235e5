package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/deploydrill/deploydrill/ci/history"
)

func historyCommand() command {
	const summary = "the drill history: TTD and TTR per drill (a table, --json, or --svg FILE for a trend chart)"
	return command{name: "history", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		var (
			o      buildOptions
			h      historyOptions
			a      awsOptions
			q      history.Query
			asJSON bool
			svg    string
		)
		f := newFlags("history", summary, stderr)
		f.String(&o.cacheDir, "cache-dir", "DRILL_CACHE_DIR", defaultCacheDir(), "where the default history file lives")
		h.registerLocation(f)
		a.registerAccount(f)
		f.Bool(&asJSON, "json", "", false, "print the records as JSON instead of a table")
		f.Int(&q.Last, "last", "", 0, "only the last N drills (0: all)")
		f.String(&q.Target, "target", "", "", "only drills on this target (local, aws)")
		f.String(&q.Fault, "fault", "", "", "only drills of this fault kind")
		f.String(&svg, "svg", "", "", "also write a trend chart of TTD and TTR (median and p90 bands) to this file")
		if err := f.parse(args); err != nil {
			return err
		}
		if q.Last < 0 {
			return usageError("--last %d: must not be negative", q.Last)
		}
		if h.location == historyOff {
			return usageError("--history off: there is no history to show")
		}
		store, err := h.open(ctx, o.cacheDir, &a)
		if err != nil {
			return err
		}
		records, err := store.List(ctx)
		if err != nil {
			return err
		}
		records = history.Filter(records, q)
		if svg != "" {
			if err := os.WriteFile(svg, history.TrendSVG(records), 0o644); err != nil {
				return fmt.Errorf("write trend chart: %w", err)
			}
			newLogger(stderr, false).Info("trend chart written to "+svg, "phase", "history")
		}
		if asJSON {
			return history.WriteJSON(stdout, records)
		}
		return history.WriteTable(stdout, records)
	}}
}
