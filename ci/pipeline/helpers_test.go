package pipeline_test

import (
	"strconv"
	"strings"
)

func itoa(n int) string { return strconv.Itoa(n) }

func lines(s string, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(s), "\n"), nil
}
