package remote

import (
	"strings"
	"testing"
)

func TestExitErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  ExitError
		want string
	}{
		{"an exit status with stderr", ExitError{Command: "docker pull x", Status: 1, Stderr: "manifest unknown"},
			"docker pull x: exit 1: manifest unknown"},
		{"an exit status without stderr", ExitError{Command: "false", Status: 1}, "false: exit 1"},
		{"a signal", ExitError{Command: "sleep 9", Status: 137, Signal: "KILL"}, "sleep 9: killed by signal KILL"},
		{"no exit status at all", ExitError{Command: "true", Status: -1}, "true: ended without an exit status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStderrTail(t *testing.T) {
	tests := []struct {
		name    string
		stderr  string
		secrets []string
		want    string
	}{
		{"lines are joined on one line, blanks dropped", "Error response from daemon:\n\n  manifest unknown  \n", nil,
			"Error response from daemon:; manifest unknown"},
		{"secrets are redacted", "login with hunter2 failed\n", []string{"hunter2"}, "login with [REDACTED] failed"},
		{"long stderr keeps its end", strings.Repeat("x", 5000) + "\nthe cause\n", nil, "the cause"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &capBuffer{limit: 64 << 10, keepTail: true}
			b.Write([]byte(tt.stderr))
			got := tail(b, tt.secrets)
			if !strings.HasSuffix(got, tt.want) || len(got) > 1100 {
				t.Errorf("tail = %q (%d bytes), want it to end with %q and stay short", got, len(got), tt.want)
			}
		})
	}
}

func TestCapBufferKeepsTheTailOfALongStream(t *testing.T) {
	b := &capBuffer{limit: 8, keepTail: true}
	b.Write([]byte("0123456789"))
	b.Write([]byte("ab"))
	if got := string(b.Bytes()); got != "456789ab" || !b.truncated {
		t.Errorf("Bytes() = %q, truncated %v", got, b.truncated)
	}
}

func TestPIDWriterPassesTheRestThrough(t *testing.T) {
	var out capBuffer
	out.limit = 1 << 10
	p := &pidWriter{next: &out, pid: make(chan int, 1)}
	for _, chunk := range []string{"12", "34\nhel", "lo\n"} {
		p.Write([]byte(chunk))
	}
	if pid := <-p.pid; pid != 1234 || string(out.Bytes()) != "hello\n" {
		t.Errorf("pid %d, stdout %q", pid, out.Bytes())
	}
}
