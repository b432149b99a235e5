package remote

import (
	"encoding/json"
	"os"
	"testing"
)

// argvPrinterEnv turns the test binary into a program that prints its own argv as JSON: the
// quoting tests run a quoted line through a real shell and compare what arrives.
const argvPrinterEnv = "REMOTE_TEST_PRINT_ARGV"

func TestMain(m *testing.M) {
	if os.Getenv(argvPrinterEnv) == "1" {
		raw := make([][]byte, 0, len(os.Args)-1) // bytes, not strings: JSON would mangle invalid UTF-8
		for _, a := range os.Args[1:] {
			raw = append(raw, []byte(a))
		}
		_ = json.NewEncoder(os.Stdout).Encode(raw)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
