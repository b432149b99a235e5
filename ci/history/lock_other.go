//go:build !unix

package history

import (
	"context"
	"os"
)

// lock is a no-op where flock does not exist: appends still go out as one O_APPEND write.
func lock(context.Context, *os.File, bool) error { return nil }
