package history

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes records as an aligned table, one drill a line, in the order given:
//
//	TIME                  TARGET  FAULT  V        K        TTD     TTR    DOWNTIME  PASSED
//	2025-01-02T15:04:05Z  local   stop   3f2c1e0  9a8b7c6  850 ms  1.2 s  2.1 s     yes
//
// A figure that was not measured is "-".
func WriteTable(w io.Writer, records []Record) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTARGET\tFAULT\tV\tK\tTTD\tTTR\tDOWNTIME\tPASSED")
	for _, r := range records {
		passed := "yes"
		if !r.Passed {
			passed = fmt.Sprintf("no (exit %d)", r.ExitStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.At.UTC().Format(time.RFC3339), cell(r.Target), cell(r.Fault), cell(r.V), cell(r.K),
			optHuman(r.TTD()), optHuman(r.TTR()), optHuman(r.Downtime()), passed)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write history table: %w", err)
	}
	return nil
}

// cell keeps a value on one line and visible.
func cell(s string) string {
	if s = strings.Join(strings.Fields(s), " "); s == "" {
		return "-"
	}
	return s
}

// WriteJSON writes records as an indented JSON array ([] for none), schema fields included.
func WriteJSON(w io.Writer, records []Record) error {
	out := make([]Record, len(records))
	for i, r := range records {
		if r.Schema == "" {
			r.Schema = Schema
		}
		out[i] = r
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write history json: %w", err)
	}
	return nil
}
