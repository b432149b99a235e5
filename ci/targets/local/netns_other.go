//go:build !linux

package local

import "os"

// inNamespace needs Linux network namespaces; elsewhere the engine is not on this machine.
func inNamespace(*os.File, func()) error { return ErrEngineNotLocal }
