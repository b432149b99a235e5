package history_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/history"
)

// The test binary doubles as a second process appending to the same file: TestMain runs
// appendFromChild instead of the tests when the environment says so.
const (
	childPathEnv  = "HISTORY_TEST_APPEND_TO"
	childNameEnv  = "HISTORY_TEST_APPENDER"
	childCountEnv = "HISTORY_TEST_APPENDS"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childPathEnv); path != "" {
		if err := appendFromChild(path, os.Getenv(childNameEnv), os.Getenv(childCountEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// appendFromChild waits for its stdin to close (the parent's starting signal), then appends.
func appendFromChild(path, name, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return fmt.Errorf("child %s: count %q: %w", name, count, err)
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		return fmt.Errorf("child %s: wait for start: %w", name, err)
	}
	store, err := history.Open(path, nil)
	if err != nil {
		return err
	}
	for i := range n {
		if err := store.Append(context.Background(), bigRecord(name, i)); err != nil {
			return fmt.Errorf("child %s: %w", name, err)
		}
	}
	return nil
}

// bigRecord is a record of about 8 KiB, so that interleaved writes could not go unnoticed.
func bigRecord(writer string, i int) history.Record {
	r := drillRecord(i+1, 400, 1200)
	r.RunID = fmt.Sprintf("%s-%03d", writer, i)
	r.Report = "/reports/" + strings.Repeat(writer+"/", 8192/(len(writer)+1)) + "report.json"
	return r
}

func openFile(t *testing.T, path string) history.Store {
	t.Helper()
	s, err := history.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileStoreRoundTripsRecordsOldestFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache", "deploydrill", "history.jsonl")
	s := openFile(t, path)
	got, err := s.List(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("a missing file is an empty history: got %v, %v", got, err)
	}
	drills := series(1200, 900, 1500)
	drills[1].TTRMS, drills[1].Requests, drills[1].FailedRequests, drills[1].ErrorRate = nil, history.Int(1000), history.Int(7), history.Float(0.007)
	drills[2].Passed, drills[2].ExitStatus = false, 1
	for _, i := range []int{1, 0, 2} { // out of time order
		if err := s.Append(t.Context(), drills[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range drills {
		drills[i].Schema = history.Schema
	}
	if !reflect.DeepEqual(got, drills) {
		t.Errorf("listed:\n%+v\nwant:\n%+v", got, drills)
	}
}

func TestFileStoreWritesOneSnakeCaseLinePerRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	r := drillRecord(1, 850, 1200)
	r.At = time.Date(2025, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600)) // stored in UTC
	r.Availability.Outage = nil
	if err := openFile(t, path).Append(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema":"deploydrill.history/v1","run_id":"run-001","at":"2025-03-01T09:00:00Z","target":"local","v":"v0000001","k":"k0000001","fault":"stop",` +
		`"ttd_ms":850,"ttr_ms":1200,"downtime_ms":2050,"availability":{"live":1,"outage":null,"recovery":0.95},"probes":180,"failed_probes":9,` +
		`"requests":null,"failed_requests":null,"error_rate":null,"passed":true,"exit_status":0,"report":"drill-report-1/report.json"}` + "\n"
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
}

func TestAppendRefusesRecordsWithoutIdentity(t *testing.T) {
	tests := []struct {
		name string
		edit func(*history.Record)
		want string
	}{
		{"a record needs a run id", func(r *history.Record) { r.RunID = "" }, "no run id"},
		{"a record needs the time of the drill", func(r *history.Record) { r.At = time.Time{} }, "no time"},
		{"a record of another schema is not relabelled", func(r *history.Record) { r.Schema = "deploydrill.history/v2" }, `schema "deploydrill.history/v2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.jsonl")
			r := drillRecord(1, 500, 1000)
			tt.edit(&r)
			err := openFile(t, path).Append(t.Context(), r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("the file was created for a refused record: %v", serr)
			}
		})
	}
}

// line is drill n as stored.
func line(t *testing.T, n int) string {
	t.Helper()
	r := drillRecord(n, 500, 1000)
	r.Schema = history.Schema
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFileStoreListNamesEveryLineItCannotRead(t *testing.T) {
	tests := []struct {
		name    string
		content func(t *testing.T) string
		lines   []int    // the lines named, in order
		want    []string // in the message
	}{
		{"a line that is not JSON is named by its number",
			func(t *testing.T) string { return line(t, 1) + "\n{\"schema\":\"deploydr\n" + line(t, 2) + "\n" },
			[]int{2}, []string{"line 2: not JSON"}},
		{"a foreign JSON Lines file is not an empty history",
			func(*testing.T) string { return `{"level":"info","msg":"hello"}` + "\n" },
			[]int{1}, []string{"line 1: not a deploydrill.history/v1 record: no schema field"}},
		{"a record of another schema is foreign",
			func(*testing.T) string { return `{"schema":"deploydrill.report/v1","passed":true}` + "\n" },
			[]int{1}, []string{`schema "deploydrill.report/v1"`}},
		{"a record with a field of the wrong type is malformed",
			func(t *testing.T) string {
				return line(t, 1) + "\n" + strings.Replace(line(t, 2), `"probes":180`, `"probes":"many"`, 1) + "\n"
			},
			[]int{2}, []string{"line 2: malformed deploydrill.history/v1 record"}},
		{"a record without its run id is malformed",
			func(t *testing.T) string {
				return strings.Replace(line(t, 1), `"run_id":"run-001"`, `"run_id":""`, 1) + "\n"
			},
			[]int{1}, []string{"no run_id"}},
		{"a torn last line is named too",
			func(t *testing.T) string { return line(t, 1) + "\n" + line(t, 2)[:40] },
			[]int{2}, []string{"line 2: not JSON"}},
		{"past three bad lines the rest are counted",
			func(t *testing.T) string { return "a\nb\n\n" + line(t, 1) + "\nc\nd\ne\n" },
			[]int{1, 2, 5}, []string{"and 2 more lines of"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.jsonl")
			content := tt.content(t)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := openFile(t, path).List(t.Context())
			if err == nil {
				t.Fatalf("listed %d records from a damaged file, want an error", len(got))
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			var lines []int
			for _, e := range flatten(err) {
				var cerr *history.CorruptError
				if errors.As(e, &cerr) {
					lines = append(lines, cerr.Line)
				}
			}
			if !reflect.DeepEqual(lines, tt.lines) {
				t.Errorf("named lines %v, want %v", lines, tt.lines)
			}
			if after, _ := os.ReadFile(path); string(after) != content {
				t.Error("List changed the file")
			}
		})
	}
}

// flatten unwraps wrapping and joined errors down to the leaves' parents.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if next := errors.Unwrap(err); next != nil {
		if _, ok := err.(*history.CorruptError); ok {
			return []error{err}
		}
		return flatten(next)
	}
	return []error{err}
}

func TestFileStoreAppendRefusesAFileWhoseLastLineIsNotARecord(t *testing.T) {
	tests := []struct {
		name    string
		content func(t *testing.T) string
		want    []string
	}{
		{"a torn write is not glued to the next record",
			func(t *testing.T) string { return line(t, 1) + "\n" + line(t, 2)[:60] },
			[]string{"line 2: incomplete last line, no newline at the end", "nothing was appended", "fix or delete line 2"}},
		{"a foreign last line is left alone",
			func(t *testing.T) string { return line(t, 1) + "\n" + `{"event":"deploy"}` + "\n" },
			[]string{"line 2: not a deploydrill.history/v1 record", "nothing was appended"}},
		{"a foreign file is not appended to",
			func(*testing.T) string { return "# notes\nthis is not history\n\n" },
			[]string{"line 2: not JSON", "move the file away to start a new history"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.jsonl")
			content := tt.content(t)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			err := openFile(t, path).Append(t.Context(), drillRecord(3, 500, 1000))
			if err == nil {
				t.Fatal("appended to a file whose last line is not a record")
			}
			for _, w := range append(tt.want, path, "run-003") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			var cerr *history.CorruptError
			if !errors.As(err, &cerr) || cerr.Location != path {
				t.Errorf("error is not a *CorruptError naming the file: %#v", err)
			}
			if after, _ := os.ReadFile(path); string(after) != content {
				t.Errorf("the file changed:\n%q\nwant:\n%q", after, content)
			}
		})
	}
}

func TestFileStoreAppendsAfterWhatItCanRead(t *testing.T) {
	tests := []struct {
		name    string
		content func(t *testing.T) string
		records int // listed after the append
	}{
		{"a last record missing only its newline keeps its line", func(t *testing.T) string { return line(t, 1) + "\n" + line(t, 2) }, 3},
		{"blank lines after the last record are fine", func(t *testing.T) string { return line(t, 1) + "\n\n  \n" }, 2},
		{"an empty file is an empty history", func(*testing.T) string { return "" }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.jsonl")
			if err := os.WriteFile(path, []byte(tt.content(t)), 0o644); err != nil {
				t.Fatal(err)
			}
			s := openFile(t, path)
			if err := s.Append(t.Context(), drillRecord(3, 500, 1000)); err != nil {
				t.Fatal(err)
			}
			got, err := s.List(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.records || got[len(got)-1].RunID != "run-003" {
				t.Errorf("listed %d records ending with %s, want %d ending with run-003", len(got), got[len(got)-1].RunID, tt.records)
			}
		})
	}
}

// TestConcurrentAppendsNeverInterleave appends from goroutines of this process and from two
// child processes at once, all released together, then reads the file line by line.
func TestConcurrentAppendsNeverInterleave(t *testing.T) {
	const (
		goroutines = 8
		children   = 2
		each       = 40
	)
	path := filepath.Join(t.TempDir(), "history.jsonl")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var procs []*exec.Cmd
	var gates []io.Closer
	var childErr [children]bytes.Buffer
	for c := range children {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childPathEnv+"="+path, childNameEnv+"="+fmt.Sprint("child", c), childCountEnv+"="+fmt.Sprint(each))
		cmd.Stderr = &childErr[c]
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs, gates = append(procs, cmd), append(gates, stdin)
	}
	start := make(chan struct{})
	errs := make(chan error, goroutines*each)
	var wg sync.WaitGroup
	s := openFile(t, path)
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range each {
				errs <- s.Append(t.Context(), bigRecord(fmt.Sprint("goroutine", g), i))
			}
		})
	}
	close(start)
	for _, g := range gates {
		g.Close() // the children start
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for c, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v: %s", c, err, childErr[c].String())
		}
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var r history.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Schema != history.Schema {
			t.Fatalf("line %d is not a whole record (%v): %.120q", n, err, sc.Text())
		}
		if seen[r.RunID] {
			t.Errorf("line %d: %s appended twice", n, r.RunID)
		}
		seen[r.RunID] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if want := (goroutines + children) * each; len(seen) != want {
		t.Errorf("%d records in the file, want %d", len(seen), want)
	}
	listed, err := s.List(t.Context())
	if err != nil || len(listed) != len(seen) {
		t.Errorf("List: %d records, %v; want %d", len(listed), err, len(seen))
	}
}

func TestOpenChoosesTheStoreByLocation(t *testing.T) {
	client := &fakeS3{}
	tests := []struct {
		name     string
		location string
		client   history.S3API
		want     string // error text; "" opens
	}{
		{"a path is a JSON Lines file", filepath.Join(t.TempDir(), "h.jsonl"), nil, ""},
		{"a relative path is a file too", "history.jsonl", nil, ""},
		{"s3://bucket/prefix is the S3 store", "s3://drills/team/app", client, ""},
		{"a bucket alone is the S3 store at its root", "s3://drills", client, ""},
		{"the default path is the caller's to give", "", nil, "no location"},
		{"an S3 location needs a bucket", "s3:///prefix", client, "no bucket"},
		{"an S3 location needs a client", "s3://drills/p", nil, "no S3 client"},
		{"another scheme is not taken for a file name", "gs://drills/p", nil, "unsupported scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := history.Open(tt.location, tt.client)
			switch {
			case tt.want == "" && (err != nil || s == nil):
				t.Fatalf("Open(%q): %v", tt.location, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Open(%q): got %v, want an error saying %q", tt.location, err, tt.want)
			}
		})
	}
}
