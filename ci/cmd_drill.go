package main

import (
	"context"
	"errors"
	"io"
)

func drillCommand() command {
	const summary = "the whole drill: build, test, publish, deploy, outage, rollback, recovery, teardown, report"
	return command{name: "drill", summary: summary, run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return errors.New("drill: not wired yet")
	}}
}
