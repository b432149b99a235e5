package remote

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/internal/golden"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

// TestFaultCommandsGolden pins the exact lines the fault builders send, scripts included.
// Refresh with: go test ./infra/remote -run TestFaultCommandsGolden -update
func TestFaultCommandsGolden(t *testing.T) {
	partition := PartitionRule(80, "r1")
	delay := DelayRule(80, 2718, "r1")
	delayer := Delayer{Queue: 2718, Delay: 2 * time.Second, Lifetime: 30 * time.Minute, PIDFile: ".deploydrill-fault-slow-r1.pid"}
	loop := CrashLoop{Container: "deploydrill-app", Uptime: 1500 * time.Millisecond, Lifetime: 30 * time.Minute, PIDFile: ".deploydrill-fault-crashloop-r1.pid"}
	tests := []struct {
		golden string
		cmd    Command
	}{
		{"sudo_check", SudoCheck()},
		{"kill", Kill("deploydrill-app", "KILL")},
		{"pause", Pause("deploydrill-app")},
		{"unpause", Unpause("deploydrill-app")},
		{"update_restart", UpdateRestart("deploydrill-app", "always")},
		{"partition_insert", Sudo(InsertRule(partition))},
		{"partition_delete", Sudo(DeleteRule(partition))},
		{"partition_list", Sudo(ListRules(partition.Table, partition.Chain))},
		{"delay_insert", Sudo(InsertRule(delay))},
		{"delay_delete", Sudo(DeleteRule(delay))},
		{"delayer_start", Sudo(StartDelayer(delayer))},
		{"delayer_stop", Sudo(StopProcess(delayer.PIDFile, DelayMarker))},
		{"crashloop_start", StartCrashLoop(loop)},
		{"crashloop_stop", StopProcess(loop.PIDFile, CrashLoopMarker)},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := strings.Join(tt.cmd.Lines(), "\n") + "\n"
			golden.Check(t, filepath.Join("testdata", "fault", tt.golden+".golden"), []byte(got))
		})
	}
}

func TestScriptsAreNamedNotQuotedInLogsAndErrors(t *testing.T) {
	d := Sudo(StartDelayer(Delayer{Queue: 7, Delay: 250 * time.Millisecond, Lifetime: time.Minute, PIDFile: "d.pid"}))
	if got, want := d.String(), "sudo -n -- python3 -c <delay.py> deploydrill-fault-slow 7 0.250 60.000 d.pid"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	c := StartCrashLoop(CrashLoop{Container: "app", Uptime: time.Second, Lifetime: 90 * time.Second, PIDFile: "c.pid"})
	if got, want := c.String(), "sh -c <start.sh> deploydrill-fault-start <crashloop.sh> deploydrill-fault-crashloop c.pid app 1.000 90 c.pid"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if line := c.Lines()[0]; !strings.Contains(line, "docker container inspect") {
		t.Errorf("the line sent does not carry the loop's body: %.200s", line)
	}
	if got, want := Sequence(SudoCheck(), c).String(), "sudo -n -- true && "+c.String(); got != want {
		t.Errorf("a sequence shows %q, want %q", got, want)
	}
}

func TestCountRules(t *testing.T) {
	// iptables-nft 1.8.9 `iptables -t raw -S PREROUTING`, with a look-alike and an escaped quote.
	out := `-P PREROUTING ACCEPT
-A PREROUTING -p tcp -m tcp --dport 80 -m comment --comment "deploydrill-fault partition run r1" -j DROP
-A PREROUTING -p tcp -m tcp --dport 80 -m comment --comment "deploydrill-fault partition run r10" -j DROP
-A PREROUTING -p tcp -m tcp --dport 81 -m comment --comment "say \"deploydrill-fault partition run r1\"" -j DROP
-A PREROUTING -p tcp -m tcp --dport 82 -m comment --comment bare-word -j DROP
-A PREROUTING -p tcp -m tcp --dport 80 -m comment --comment "deploydrill-fault partition run r1" -j DROP
`
	tests := []struct {
		comment string
		want    int
	}{
		{"deploydrill-fault partition run r1", 2},
		{"deploydrill-fault partition run r10", 1},
		{`say "deploydrill-fault partition run r1"`, 1},
		{"bare-word", 1},
		{"deploydrill-fault partition run r2", 0},
	}
	for _, tt := range tests {
		if got := CountRules([]byte(out), tt.comment); got != tt.want {
			t.Errorf("CountRules(%q) = %d, want %d", tt.comment, got, tt.want)
		}
	}
}

// TestScriptsParse checks every embedded script with its interpreter's parser.
func TestScriptsParse(t *testing.T) {
	for name, body := range map[string]string{"crashloop.sh": crashLoopScript, "start.sh": startScript, "stop.sh": stopScript} {
		if out, err := exec.Command("sh", "-n", "-c", body).CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s", name, err, out)
		}
	}
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.Require(t, "python3", "apt-get install -y python3")
	}
	parse := exec.Command("python3", "-c", "import ast, sys; ast.parse(sys.stdin.read())")
	parse.Stdin = strings.NewReader(delayScript)
	if out, err := parse.CombinedOutput(); err != nil {
		t.Errorf("delay.py: %v: %s", err, out)
	}
}

// TestStopProcessStopsOnlyItsMarkedProcess runs the stop script here, as the host would: the
// process the pid file names is stopped only when its command line holds the marker.
func TestStopProcessStopsOnlyItsMarkedProcess(t *testing.T) {
	dir := t.TempDir()
	start := func(marker string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", "sleep 30; exit 0", marker) // not exec'd: sh keeps the marker
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}        // as setsid -f and the delayer do
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	stop := func(pidFile, marker string) error {
		argv := StopProcess(pidFile, marker).Steps()[0]
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	}
	write := func(name string, pid int) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	marked := start("deploydrill-fault-test")
	exited := make(chan struct{})
	go func() { _ = marked.Wait(); close(exited) }()
	write("marked.pid", marked.Process.Pid)
	if err := stop("marked.pid", "deploydrill-fault-test"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the marked process still runs after the stop script returned")
	}
	if _, err := os.Stat(filepath.Join(dir, "marked.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}

	other := start("something-else")
	write("other.pid", other.Process.Pid)
	if err := stop("other.pid", "deploydrill-fault-test"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a process without the marker was stopped: %v", err)
	}
	if err := stop("missing.pid", "deploydrill-fault-test"); err != nil {
		t.Errorf("stop with no pid file: %v, want success", err)
	}
}
