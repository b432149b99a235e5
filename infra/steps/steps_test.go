package steps_test

import (
	"context"
	"errors"
	"testing"

	"github.com/deploydrill/deploydrill/infra/steps"
)

func TestRunStopsAtTheFirstFailureAndNamesIt(t *testing.T) {
	var ran []string
	step := func(name string, err error) steps.Step {
		return steps.Step{Name: name, Run: func(context.Context) error { ran = append(ran, name); return err }}
	}
	boom := errors.New("boom")
	err := steps.Run(t.Context(), "launch host", step("a", nil), step("b", boom), step("c", nil))
	if !errors.Is(err, boom) || err.Error() != "launch host: b: boom" {
		t.Errorf("err = %v, want launch host: b: boom wrapping boom", err)
	}
	if len(ran) != 2 || ran[1] != "b" {
		t.Errorf("ran %v, want a then b and nothing after the failure", ran)
	}
	if err := steps.Run(t.Context(), "x", step("d", nil)); err != nil {
		t.Errorf("all passing: %v", err)
	}
}
