package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps failures instead of reporting them; Fatalf ends the calling
// goroutine as the real one does.
type recorder struct {
	testing.TB
	errors []string
	fatal  string
}

var _ testing.TB = (*recorder)(nil)

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// check runs Check on its own goroutine so that a Fatalf cannot end the test itself.
func check(path string, got []byte) *recorder {
	r := new(recorder)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Check(r, path, got)
	}()
	<-done
	return r
}

func setUpdate(t *testing.T, on bool) {
	old := *update
	*update = on
	t.Cleanup(func() { *update = old })
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name        string
		stored      string // "" for no file
		got         string
		update      bool
		wantFatal   string
		wantError   []string
		wantOnDisk  string
		wantCreated bool
	}{
		{name: "equal output passes", stored: "a\nb\n", got: "a\nb\n", wantOnDisk: "a\nb\n"},
		{name: "a changed line fails naming the file and the line", stored: "a\nb\n", got: "a\nc\n",
			wantError: []string{"x.golden differs", "line 2:", `got: "c"`, `want: "b"`, "-update"}, wantOnDisk: "a\nb\n"},
		{name: "a missing file is fatal and says how to create it", got: "a\n",
			wantFatal: "-update to create it"},
		{name: "update rewrites a changed file and passes", stored: "old\n", got: "new\n", update: true, wantOnDisk: "new\n"},
		{name: "update creates the file and its directory", got: "new\n", update: true, wantOnDisk: "new\n", wantCreated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setUpdate(t, tt.update)
			path := filepath.Join(t.TempDir(), "x.golden")
			if tt.wantCreated {
				path = filepath.Join(t.TempDir(), "sub", "x.golden")
			}
			if tt.stored != "" {
				if err := os.WriteFile(path, []byte(tt.stored), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := check(path, []byte(tt.got))
			if !strings.Contains(r.fatal, tt.wantFatal) || (tt.wantFatal == "") != (r.fatal == "") {
				t.Errorf("fatal %q, want one containing %q", r.fatal, tt.wantFatal)
			}
			if (len(tt.wantError) == 0) != (len(r.errors) == 0) || len(r.errors) > 1 {
				t.Fatalf("errors %q, want %d", r.errors, min(len(tt.wantError), 1))
			}
			for _, want := range tt.wantError {
				if !strings.Contains(r.errors[0], want) {
					t.Errorf("error %q lacks %q", r.errors[0], want)
				}
			}
			if tt.wantOnDisk != "" {
				data, err := os.ReadFile(path)
				if err != nil || string(data) != tt.wantOnDisk {
					t.Errorf("on disk %q (%v), want %q", data, err, tt.wantOnDisk)
				}
			}
		})
	}
}

func TestDiff(t *testing.T) {
	long := strings.Repeat("x", fullDumpLimit)
	tests := []struct {
		name, got, want string
		wantIn          []string
		wantOut         []string
	}{
		{name: "equal outputs have no diff", got: "a\n", want: "a\n"},
		{name: "short outputs show the first differing line and both in full", got: "a\nb\nc\n", want: "a\nB\nC\n",
			wantIn: []string{"line 2:", `got: "b"`, `want: "B"`, "--- got\na\nb\nc\n", "--- want\na\nB\nC\n"}},
		{name: "a missing trailing newline is named", got: "a", want: "a\n",
			wantIn: []string{"line 2:", `got: "(end of file)"`, `want: ""`}},
		{name: "long outputs show only the first differing line", got: long + "\n1\n", want: long + "\n2\n",
			wantIn: []string{"line 2:", `got: "1"`, `want: "2"`}, wantOut: []string{"--- got"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diff([]byte(tt.got), []byte(tt.want))
			if len(tt.wantIn) == 0 && d != "" {
				t.Errorf("diff %q, want none", d)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(d, s) {
					t.Errorf("diff %q lacks %q", d, s)
				}
			}
			for _, s := range tt.wantOut {
				if strings.Contains(d, s) {
					t.Errorf("diff %q has %q", d, s)
				}
			}
		})
	}
}
