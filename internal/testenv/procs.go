package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// AppProcesses finds the live processes on this machine whose environment says
// APP_VERSION=version: the app's gunicorn master and workers, wherever the engine runs them.
// Zombies have exited already (their parent just has not reaped them) and do not count.
func AppProcesses(version string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []string
	for _, d := range dirs {
		env, err := os.ReadFile(d + "/environ")
		if err != nil || !bytes.Contains(env, []byte("APP_VERSION="+version+"\x00")) {
			continue
		}
		if stat, err := os.ReadFile(d + "/stat"); err == nil && strings.Contains(string(stat), ") Z ") {
			continue
		}
		pids = append(pids, filepath.Base(d))
	}
	return pids
}
