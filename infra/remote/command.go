// Package remote runs commands on a deploy host over SSH. Commands are data: pure functions return
// argv (docker.go, fault.go), quoted into the exact line an SSH session executes (quote.go) and
// golden-tested; one Runner (runner.go) executes them over a single SSH connection with a pinned
// host key.
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
	// shown is, per step, how logs and errors name it when that differs from the argv (a
	// script's body is named, not quoted in full); "" means Join(argv).
	shown []string
}

// NewCommand returns a one-step command. Secrets never belong in argv: pass them on stdin.
func NewCommand(argv ...string) Command {
	return Command{steps: [][]string{slices.Clone(argv)}, shown: []string{""}}
}

// script is a one-step command running a script's body with an interpreter (sh -c, python3 -c):
// argv carries the bodies, shown the same words with each body replaced by <name>, which is how
// logs and errors name it.
func script(argv, shown []string) Command {
	return Command{steps: [][]string{slices.Clone(argv)}, shown: []string{joinShown(shown)}}
}

// joinShown quotes like Join but leaves a <script> placeholder readable.
func joinShown(argv []string) string {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") && !strings.ContainsAny(a, " \n'") {
			quoted[i] = a
		} else {
			quoted[i] = Quote(a)
		}
	}
	return strings.Join(quoted, " ")
}

// Sequence returns a command running the steps of cmds in order.
func Sequence(cmds ...Command) Command {
	var c Command
	for _, cmd := range cmds {
		c.steps = append(c.steps, cmd.Steps()...)
		c.shown = append(c.shown, cmd.shownSteps()...)
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

// shownSteps is how logs and errors name each step.
func (c Command) shownSteps() []string {
	out := make([]string, len(c.steps))
	for i, s := range c.steps {
		if i < len(c.shown) && c.shown[i] != "" {
			out[i] = c.shown[i]
		} else {
			out[i] = Join(s)
		}
	}
	return out
}

// Lines returns the exact command line each step's SSH session executes.
func (c Command) Lines() []string {
	lines := make([]string, len(c.steps))
	for i, s := range c.steps {
		lines[i] = stepPrefix + Join(s)
	}
	return lines
}

// String is the command as a person would type it, for logs and errors, with script bodies named
// rather than quoted (Lines has them). It never holds a secret, because argv never does.
func (c Command) String() string {
	return strings.Join(c.shownSteps(), " && ")
}
