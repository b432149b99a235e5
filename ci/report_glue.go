package main

import (
	"os"

	"github.com/deploydrill/deploydrill/ci/drill"
	"github.com/deploydrill/deploydrill/ci/report"
)

// writeReport writes every report file, and appends the summary to GitHub's job summary when
// the run is in GitHub Actions.
func writeReport(dir string, r *drill.Result) ([]string, error) {
	return report.Write(dir, r, report.Options{StepSummary: os.Getenv("GITHUB_STEP_SUMMARY")})
}
