package drill

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/deploydrill/deploydrill/ci/probe"
)

// startPreparing lets a Preparer get K ready while the live window runs.
func (r *run) startPreparing(ctx context.Context, k Image) {
	p, ok := r.deps.Target.(Preparer)
	if !ok || k.Ref == r.cfg.Image.Ref && r.cfg.Fault.Kind != FaultBadDeploy { // bad-deploy rolls back to V itself
		return
	}
	r.log("preparing K %s", k.Tag)
	ctx, r.prepCancel = context.WithCancel(ctx)
	r.prepDone = make(chan error, 1)
	phase, clock := r.phase, r.clock
	go func() {
		start := clock.Now()
		err := p.Prepare(ctx, k)
		if err == nil { // said when it happens: the window goes on meanwhile
			r.logIn(phase, "K %s prepared in %s", k.Tag, fmtDur(clock.Now().Sub(start)))
		}
		r.prepDone <- err
	}()
}

// awaitPrepared lets a Prepare still running at the end of the live window finish: stopping V
// before K is ready would lengthen the outage for a reason the drill does not measure.
func (r *run) awaitPrepared(ctx context.Context) error {
	if r.prepDone == nil {
		return nil
	}
	var err error
	select {
	case err = <-r.prepDone:
	default:
		r.log("waiting for K to be prepared")
		select {
		case err = <-r.prepDone:
		case <-ctx.Done():
			return r.interrupted(ctx)
		}
	}
	r.prepDone, r.prepCancel = nil, nil
	if err != nil {
		r.warn("prepare %s: %v (the rollback will fetch it)", r.res.K.Tag, err)
	}
	return nil
}

// stopPreparing cancels a Prepare the drill no longer waits for and lets it return before
// teardown starts.
func (r *run) stopPreparing() {
	if r.prepDone == nil {
		return
	}
	r.prepCancel()
	<-r.prepDone
	r.prepDone, r.prepCancel = nil, nil
}

// markVerified records V as known-good once it passed the live window. The inventory writes a
// second immutable tag, so an image already verified is left alone.
func (r *run) markVerified(ctx context.Context, v Image) {
	switch {
	case r.deps.Inventory == nil:
		r.logIn(PhaseLive, "no inventory: %s not recorded as verified", v.Tag)
	case r.res.VerifiedV:
		r.logIn(PhaseLive, "%s already verified by an earlier drill", v.Tag)
	default:
		if err := r.deps.Inventory.MarkVerified(ctx, v.Tag); err != nil {
			r.warn("mark %s verified: %v", v.Tag, err)
			return
		}
		r.res.VerifiedV = true
		r.logIn(PhaseLive, "marked %s verified", v.Tag)
	}
}

// expect sets the verdict of the expectation phase p answers for (stop errors count against
// the outage).
func (r *run) expect(p Phase, status Status, format string, args ...any) {
	if p == PhaseStop {
		p = PhaseOutage
	}
	for i := range r.res.Expectations {
		if e := &r.res.Expectations[i]; e.Phase == p {
			e.Status, e.Message = status, fmt.Sprintf(format, args...)
			r.logIn(p, "%s: %s: %s", verdicts[status], e.Name, e.Message)
		}
	}
}

var verdicts = map[Status]string{Passed: "passed", Failed: "FAILED", NotRun: "not run"}

func (r *run) passed(p Phase) bool {
	for _, e := range r.res.Expectations {
		if e.Phase == p {
			return e.Status == Passed
		}
	}
	return false
}

func (r *run) log(format string, args ...any) { r.logIn(r.phase, format, args...) }

// logIn logs one progress record, stamped with the drill's clock.
func (r *run) logIn(p Phase, format string, args ...any) {
	logAt(r.deps.Log, r.clock.Now(), p, fmt.Sprintf(format, args...))
}

func logAt(log *slog.Logger, at time.Time, p Phase, msg string) {
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	rec := slog.NewRecord(at, slog.LevelInfo, msg, 0)
	rec.AddAttrs(slog.String("phase", string(p)))
	_ = log.Handler().Handle(context.Background(), rec)
}

func (r *run) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.res.Warnings = append(r.res.Warnings, msg)
	r.log("warning: %s", msg)
}

// describe says what one probe saw, for messages.
func describe(s probe.Sample) string {
	if s.Err == "" {
		return fmt.Sprintf("%s (version %s)", s.Outcome, s.Version)
	}
	return fmt.Sprintf("%s: %s", s.Outcome, s.Err)
}
