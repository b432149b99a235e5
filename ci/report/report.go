// Package report writes a drill's result as files: report.json for machines, summary.md for
// people (and GitHub's step summary), junit.xml for CI test views, timeline.svg to see it at a
// glance. Writers take plain data and touch nothing but the files they write; the report is
// written the same way whether the drill passed or failed.
//
//	res, err := drill.Run(ctx, cfg, deps)
//	if res != nil {
//		paths, werr := report.Write("drill-report", res, report.Options{
//			StepSummary: os.Getenv("GITHUB_STEP_SUMMARY"), // main reads the environment, not this package
//		})
//		err = errors.Join(err, werr)
//		for _, p := range paths {
//			fmt.Println(p)
//		}
//	}
//
// The JSON schema is the Report type and SCHEMA.md.
package report

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deploydrill/deploydrill/ci/drill"
)

// The files Write creates in its directory.
const (
	JSONFile     = "report.json"
	SummaryFile  = "summary.md"
	JUnitFile    = "junit.xml"
	TimelineFile = "timeline.svg"
)

// Options tune Write.
type Options struct {
	// StepSummary is a file the Markdown summary is appended to (GitHub's
	// $GITHUB_STEP_SUMMARY); "" skips it.
	StepSummary string
	// Assessment adds the error budget, the gates and the trend (from the drill history).
	Assessment Assessment
}

// Write renders every report file into dir (created if needed) and returns the paths written.
// Each file is replaced atomically; a file that cannot be written does not stop the others,
// and the error names every failure.
func Write(dir string, res *drill.Result, opts Options) ([]string, error) {
	if res == nil {
		return nil, errors.New("write report: no result")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write report: %w", err)
	}
	figures := drill.ComputeFigures(res)
	a := opts.Assessment
	summary := Markdown(res, figures, a)
	renders := []struct {
		name   string
		render func() ([]byte, error)
	}{
		{JSONFile, func() ([]byte, error) { return JSON(res, figures, a) }},
		{SummaryFile, func() ([]byte, error) { return summary, nil }},
		{JUnitFile, func() ([]byte, error) { return JUnit(res, figures, a) }},
		{TimelineFile, func() ([]byte, error) { return SVG(res, figures), nil }},
	}
	var paths []string
	var errs []error
	for _, r := range renders {
		path := filepath.Join(dir, r.name)
		data, err := r.render()
		if err == nil {
			err = writeAtomic(path, data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", path, err))
			continue
		}
		paths = append(paths, path)
	}
	if opts.StepSummary != "" {
		if err := appendFile(opts.StepSummary, append([]byte("\n"), summary...)); err != nil {
			errs = append(errs, fmt.Errorf("append step summary %s: %w", opts.StepSummary, err))
		}
	}
	return paths, errors.Join(errs...)
}

// writeAtomic replaces path with data, so a reader never sees half a report.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}
