// Package remote runs commands on a deploy host over SSH. Commands are data: pure functions return
// argv (docker.go), quoted into the exact line an SSH session executes (quote.go) and golden-tested;
// one Runner (runner.go) executes them over a single SSH connection with a pinned host key.
package remote

import (
	"slices"
	"strings"
)

// Command is a remote command as data: one or more argv, run in order, each in its own SSH
// session, stopping at the first failure. Each argv runs with exec, after the shell has printed its
// pid, so a timeout can stop the command's whole process group (see stepPrefix).
type Command struct {
	steps [][]string
}

// NewCommand returns a one-step command. Secrets never belong in argv: pass them on stdin.
func NewCommand(argv ...string) Command {
	return Command{steps: [][]string{slices.Clone(argv)}}
}

// Sequence returns a command running the steps of cmds in order.
func Sequence(cmds ...Command) Command {
	var c Command
	for _, cmd := range cmds {
		c.steps = append(c.steps, cmd.Steps()...)
	}
	return c
}

// Steps returns a copy of the argv of each step.
func (c Command) Steps() [][]string {
	steps := make([][]string, len(c.steps))
	for i, s := range c.steps {
		steps[i] = slices.Clone(s)
	}
	return steps
}

// Lines returns the exact command line each step's SSH session executes.
func (c Command) Lines() []string {
	lines := make([]string, len(c.steps))
	for i, s := range c.steps {
		lines[i] = stepPrefix + Join(s)
	}
	return lines
}

// String is the command as a person would type it, for logs and errors. It never holds a secret,
// because argv never does.
func (c Command) String() string {
	parts := make([]string, len(c.steps))
	for i, s := range c.steps {
		parts[i] = Join(s)
	}
	return strings.Join(parts, " && ")
}
