package report

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/drill"
)

func TestAReportIsWrittenWhenTheDrillNeverStarted(t *testing.T) {
	dir := t.TempDir()
	res := drill.Unstarted("aws", drill.Config{}, errors.New("boot: host key mismatch"), time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC))
	paths, err := Write(dir, res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 4 {
		t.Errorf("wrote %v, want all four files", paths)
	}
	data, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Passed       bool   `json:"passed"`
		Error        string `json:"error"`
		Expectations []struct {
			Status string `json:"status"`
		} `json:"expectations"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Passed || r.Error != "the drill did not start: boot: host key mismatch" || len(r.Expectations) != 6 {
		t.Errorf("report = %+v", r)
	}
	for _, e := range r.Expectations {
		if e.Status != "not_run" {
			t.Errorf("expectation %s, want not_run", e.Status)
		}
	}
}
