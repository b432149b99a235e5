package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/history"
	"github.com/deploydrill/deploydrill/ci/report"
)

// historyOptions say where drill records are kept and what a drill is held to.
type historyOptions struct {
	location  string
	slo       float64
	sloWindow string
	budget    history.Budget
	gates     history.Gates
}

// historyOff turns the history off (--history off).
const historyOff = "off"

func (o *historyOptions) registerLocation(f *flags) {
	f.String(&o.location, "history", "DRILL_HISTORY", "",
		"drill history: a JSON Lines file (default <cache-dir>/history.jsonl), s3://bucket/prefix for drills run on many machines, or off")
}

func (o *historyOptions) register(f *flags) {
	o.registerLocation(f)
	f.Float(&o.slo, "slo", "DRILL_SLO", 0, "availability SLO in percent, e.g. 99.9: the report says how much of its error budget the drill's downtime would use (0: off)")
	f.String(&o.sloWindow, "slo-window", "DRILL_SLO_WINDOW", "30d", "the SLO's window, e.g. 30d, 7d, 12h")
	f.Float(&o.gates.MaxBudgetUse, "max-budget-use", "DRILL_MAX_BUDGET_USE", 0, "gate: fail when the downtime would use more than this percent of the error budget (needs --slo; 0: off)")
	f.Duration(&o.gates.MaxTTR, "max-ttr", "DRILL_MAX_TTR", 0, "gate: fail when time to recover exceeds this (0: off)")
	f.Duration(&o.gates.MaxTTD, "max-ttd", "DRILL_MAX_TTD", 0, "gate: fail when time to detect exceeds this (0: off)")
	f.Float(&o.gates.Regress.Percent, "regress", "DRILL_REGRESS", 0, "gate: fail when TTR is more than this percent above the median of the last --regress-last drills of the same target and fault (0: off)")
	f.Int(&o.gates.Regress.LastN, "regress-last", "DRILL_REGRESS_LAST", history.DefaultRegressLast, "how many earlier drills --regress takes the median of")
}

// validate checks the SLO and the gates as usage errors.
func (o *historyOptions) validate() error {
	var errs []error
	if o.slo != 0 {
		window, err := history.ParseWindow(o.sloWindow)
		if err != nil {
			errs = append(errs, usageError("--slo-window: %v", err))
		}
		o.budget = history.Budget{SLO: o.slo, Window: window}
		if err == nil {
			if err := o.budget.Validate(); err != nil {
				errs = append(errs, usageError("--slo: %v", err))
			}
		}
	} else if o.gates.MaxBudgetUse != 0 {
		errs = append(errs, usageError("--max-budget-use needs --slo: there is no error budget without an SLO"))
	}
	if err := o.gates.Validate(); err != nil {
		errs = append(errs, usageError("%v", err))
	}
	return errors.Join(errs...)
}

// open returns the history store; nil when the history is off. An S3 location uses the AWS
// SDK's usual chain (and AWS_ENDPOINT_URL).
func (o *historyOptions) open(ctx context.Context, cacheDir string, a *awsOptions) (history.Store, error) {
	switch {
	case o.location == historyOff:
		return nil, nil
	case o.location == "":
		return history.Open(filepath.Join(cacheDir, "history.jsonl"), nil)
	case !strings.HasPrefix(o.location, "s3://"):
		return history.Open(o.location, nil)
	}
	cfg, err := a.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", o.location, err)
	}
	client := s3.NewFromConfig(cfg, func(opts *s3.Options) {
		// An AWS-compatible endpoint (a test double, MinIO) rarely serves virtual-hosted buckets.
		opts.UsePathStyle = cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL_S3") != ""
	})
	store, err := history.Open(o.location, client)
	if err != nil {
		return nil, usageError("--history: %v", err)
	}
	return store, nil
}

// record is the drill's entry in the history; the caller sets its verdict (Passed, ExitStatus)
// once the gates have been held against it.
func record(res *drill.Result, runID, reportPath string) history.Record {
	f := drill.ComputeFigures(res)
	r := history.Record{
		RunID: runID, At: res.Started, Target: res.Target, V: res.V.Tag, K: res.K.Tag, Fault: string(res.Config.Fault.Kind),
		Probes: f.Probes, FailedProbes: f.Failed, Report: reportPath,
	}
	opt := func(d drill.NullDuration) *float64 {
		if !d.Valid {
			return nil
		}
		return history.MS(d.D)
	}
	r.TTDMS, r.TTRMS, r.DowntimeMS = opt(f.TimeToDetect), opt(f.TimeToRecover), opt(f.ObservedDowntime)
	if u := f.Users; u != nil {
		r.Requests, r.FailedRequests, r.ErrorRate = history.Int(u.Requests), history.Int(u.Failed), history.Float(u.ErrorRate())
	}
	if ff := f.Fleet; ff != nil {
		r.Hosts, r.OutOfRotationMS = ff.Hosts, opt(ff.OutOfRotation)
		if f.Users != nil {
			r.RollbackFailedRequests = history.Int(ff.RollbackFailed)
		}
	}
	for _, a := range f.Availability {
		if a.Probes == 0 {
			continue
		}
		switch v := history.Float(a.Ratio()); a.Phase {
		case drill.PhaseLive:
			r.Availability.Live = v
		case drill.PhaseOutage:
			r.Availability.Outage = v
		case drill.PhaseRecovery:
			r.Availability.Recovery = v
		}
	}
	return r
}

// assess is what the budget, the gates and the earlier drills say about rec.
func (o *historyOptions) assess(rec history.Record, previous []history.Record) report.Assessment {
	var a report.Assessment
	if o.slo != 0 {
		if d, ok := rec.Downtime(); ok {
			a.Budget = fmt.Sprintf("%s (SLO %g%% over %s)", o.budget.Describe(d), o.slo, history.FormatWindow(o.budget.Window))
		} else {
			a.Budget = fmt.Sprintf("no downtime was measured (SLO %g%% over %s)", o.slo, history.FormatWindow(o.budget.Window))
		}
	}
	for _, g := range history.Evaluate(rec, previous, o.budget, o.gates) {
		a.Gates = append(a.Gates, report.Gate{Name: g.Name, Passed: g.Passed, Message: g.Message})
	}
	if _, ok := rec.TTR(); ok {
		a.Trend = history.Compare(rec, previous)
	}
	return a
}

// errGatesFailed: the drill passed but a gate did not.
var errGatesFailed = errors.New("a gate failed (see the report)")

// runID is the id that names the run in the history: the AWS run id, else the time.
func (r *drillRun) runID() string {
	if id := r.aws.runID; id != "" {
		return id
	}
	return r.started.UTC().Format("20060102-150405.000")
}
