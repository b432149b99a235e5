package awslab_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/testenv/awslab"
)

// helperEnv makes TestHelperProcess act as a separate test process instead of a test.
const helperEnv = "AWSLAB_TEST_HELPER"

// staleIndex is far from the indexes the other tests use, so only the helpers meet there.
const staleIndex = 60

// TestStartRemovesInstancesOfAKilledRun: a test process killed with a lab instance running
// leaves its namespace and daemons behind; the next process that starts a lab removes them.
func TestStartRemovesInstancesOfAKilledRun(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	killed := exec.Command(self, "-test.run=^TestHelperProcess$")
	killed.Env = append(os.Environ(), helperEnv+"=boot")
	killed.Stderr = os.Stderr
	out, err := killed.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	netns, err := bufio.NewReader(out).ReadString('\n')
	netns = strings.TrimSpace(strings.TrimPrefix(netns, "netns "))
	if err != nil || !strings.HasPrefix(netns, "/run/netns/") {
		_ = killed.Process.Kill()
		t.Fatalf("helper reported %q (%v), want its instance's namespace", netns, err)
	}
	_ = killed.Process.Signal(syscall.SIGKILL) // its lab's daemons live on, as after a killed `go test`
	_ = killed.Wait()
	if _, err := os.Stat(netns); err != nil {
		t.Fatalf("the killed run's namespace is already gone (%v): the test proves nothing", err)
	}

	next := exec.Command(self, "-test.run=^TestHelperProcess$", "-test.v")
	next.Env = append(os.Environ(), helperEnv+"=start")
	if out, err := next.CombinedOutput(); err != nil {
		t.Fatalf("next run: %v\n%s", err, out)
	}
	if _, err := os.Stat(netns); !os.IsNotExist(err) {
		t.Errorf("%s survived the next run's Start (%v)", netns, err)
	}
}

// TestHelperProcess is the test process TestStartRemovesInstancesOfAKilledRun runs: "boot"
// launches an instance, prints its namespace and waits to be killed; "start" only starts a lab.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return // not a helper: the os/exec idiom, run only by the test above
	}
	l := awslab.Start(t, awslab.Options{WithoutEngine: true, FirstIndex: staleIndex})
	if mode == "start" {
		return
	}
	r := newRun(t, l, "killed")
	if err := r.launch(t.Context()); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("netns " + l.Instances()[0].NetnsPath() + "\n")
	time.Sleep(2 * time.Minute) // killed long before; bounded in case the parent died
	t.Fatal("helper was not killed")
}
