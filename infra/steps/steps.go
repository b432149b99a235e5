// Package steps runs a create sequence: named steps in order, stopping at the first that
// fails, whose name the error carries. What the steps before it created is the caller's ledger,
// for teardown (infra/teardown runs its own steps with the same Step, all of them, collecting
// errors).
package steps

import (
	"context"
	"fmt"
)

// Step is one named step.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run runs steps in order until one fails: "what: step name: its error".
func Run(ctx context.Context, what string, steps ...Step) error {
	for _, s := range steps {
		if err := s.Run(ctx); err != nil {
			return fmt.Errorf("%s: %s: %w", what, s.Name, err)
		}
	}
	return nil
}
