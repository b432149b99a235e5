// Package history keeps one record per drill, passed or failed, and turns the records into
// figures people track: medians and p90 of time to detect and time to recover, the share of
// an SLO's error budget a drill's downtime would burn, and gates that fail a run whose
// recovery got slower. Records live in a JSON Lines file or under an S3 prefix (one object
// per drill); both refuse to drop or overwrite what they cannot read.
//
//	store, err := history.Open(location, s3Client) // a path, or s3://bucket/prefix
//	previous, err := store.List(ctx)                 // before appending this drill
//	err = store.Append(ctx, rec)
//	results := history.Evaluate(rec, previous, budget, gates) // one GateResult per gate that is on
//	line := history.Compare(rec, previous) // "TTR 1.2 s: 8% faster than the median of the last 10 drills"
//	use := budget.Describe(downtime)       // "7.0 s of 43.2 min, 0.27%"
//
// Statistics, the budget, the gates and the renderers are pure functions of records.
package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Schema identifies the record format. A change that removes or renames a field gets a new
// version; new fields may appear within a version.
const Schema = "deploydrill.history/v1"

// Record is one drill. Durations are milliseconds; a figure that was not measured is null
// (nil). Append fills Schema and makes At UTC; the other fields are the caller's.
//
//	{"schema":"deploydrill.history/v1","run_id":"20250102-150405-ab12","at":"2025-01-02T15:04:05Z",
//	 "target":"local","v":"3f2c1e0","k":"9a8b7c6","fault":"stop",
//	 "ttd_ms":850,"ttr_ms":1200,"downtime_ms":2100,
//	 "availability":{"live":1,"outage":0,"recovery":0.97},"probes":180,"failed_probes":23,
//	 "requests":null,"failed_requests":null,"error_rate":null,
//	 "passed":true,"exit_status":0,"report":"drill-report/report.json"}
type Record struct {
	Schema string    `json:"schema"`
	RunID  string    `json:"run_id"`
	At     time.Time `json:"at"` // when the drill started, UTC
	Target string    `json:"target"`
	V      string    `json:"v"` // tag of V (the git SHA)
	K      string    `json:"k"` // tag of K
	Fault  string    `json:"fault"`

	TTDMS      *float64 `json:"ttd_ms"`
	TTRMS      *float64 `json:"ttr_ms"`
	DowntimeMS *float64 `json:"downtime_ms"`

	Availability Availability `json:"availability"`
	Probes       int          `json:"probes"`
	FailedProbes int          `json:"failed_probes"`

	// What users saw, when load was measured; null otherwise.
	Requests       *int     `json:"requests"`
	FailedRequests *int     `json:"failed_requests"`
	ErrorRate      *float64 `json:"error_rate"` // 0..1

	// A fleet drill's (--hosts N): how many hosts, the fault to the load balancer routing to
	// the faulty hosts no more, users' failed requests during the rolling rollback. Absent for
	// a single host.
	Hosts                  int      `json:"hosts,omitempty"`
	OutOfRotationMS        *float64 `json:"out_of_rotation_ms,omitempty"`
	RollbackFailedRequests *int     `json:"rollback_failed_requests,omitempty"`

	Passed     bool   `json:"passed"`
	ExitStatus int    `json:"exit_status"`
	Report     string `json:"report"` // path of report.json
}

// Availability is the share of healthy probes in each window, 0..1; null when the window had
// no probes.
type Availability struct {
	Live     *float64 `json:"live"`
	Outage   *float64 `json:"outage"`
	Recovery *float64 `json:"recovery"`
}

// MS is d in milliseconds (to the microsecond), for the nullable duration fields.
func MS(d time.Duration) *float64 {
	ms := float64(d.Microseconds()) / 1000
	return &ms
}

// Float and Int make nullable figures from values.
func Float(f float64) *float64 { return &f }
func Int(n int) *int           { return &n }

// TTD is the time to detect, and whether it was measured.
func (r Record) TTD() (time.Duration, bool) { return duration(r.TTDMS) }

// TTR is the time to recover, and whether it was measured.
func (r Record) TTR() (time.Duration, bool) { return duration(r.TTRMS) }

// Downtime is the observed downtime, and whether it was measured.
func (r Record) Downtime() (time.Duration, bool) { return duration(r.DowntimeMS) }

func duration(ms *float64) (time.Duration, bool) {
	if ms == nil {
		return 0, false
	}
	return time.Duration(*ms * float64(time.Millisecond)).Round(time.Microsecond), true
}

// normalize checks a record before it is stored and fills the schema.
func normalize(r Record) (Record, error) {
	switch {
	case r.Schema != "" && r.Schema != Schema:
		return r, fmt.Errorf("record has schema %q; this version writes %s", r.Schema, Schema)
	case r.RunID == "":
		return r, errors.New("record has no run id")
	case r.At.IsZero():
		return r, errors.New("record has no time")
	}
	r.Schema = Schema
	r.At = r.At.UTC()
	return r, nil
}

// encode is the record as one JSON line, newline included.
func encode(r Record) ([]byte, error) {
	line, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record %s: %w", r.RunID, err)
	}
	return append(line, '\n'), nil
}

// decode reads one record and says why data is not one: not JSON, another schema, or a
// record without its identity.
func decode(data []byte) (Record, error) {
	var probe struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Record{}, fmt.Errorf("not JSON: %w", err)
	}
	if probe.Schema == nil {
		return Record{}, fmt.Errorf("not a %s record: no schema field", Schema)
	}
	if *probe.Schema != Schema {
		return Record{}, fmt.Errorf("not a %s record: schema %q", Schema, *probe.Schema)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("malformed %s record: %w", Schema, err)
	}
	switch {
	case r.RunID == "":
		return Record{}, fmt.Errorf("malformed %s record: no run_id", Schema)
	case r.At.IsZero():
		return Record{}, fmt.Errorf("malformed %s record: no at", Schema)
	}
	return r, nil
}

// CorruptError is a history entry that is not a record of this schema: a line of the file
// (Location is the file, Line counts from 1) or an object of the S3 store (Location is
// s3://bucket/key, Line is 0).
type CorruptError struct {
	Location string
	Line     int
	Err      error
}

func (e *CorruptError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("history object %s: %v", e.Location, e.Err)
	}
	return fmt.Sprintf("history %s line %d: %v", e.Location, e.Line, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }
