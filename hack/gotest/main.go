// Command gotest runs `go test` one package at a time, a few packages side by side, each with
// its own -timeout from a table, and ends with every package's wall time, slowest first, so
// that a suite that grows shows it in every run. It prints what plain `go test` prints (a line
// per package, the output of failed tests) and closes with "tests: N passed, N failed".
//
//	go run ./hack/gotest -timeout ./ci=6m -flags ./ci=-parallel=16 -default 2m -- [go test flags] ./...
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// budgets maps an import path (or ./relative path) to its -timeout.
type budgets map[string]time.Duration

func (b budgets) String() string { return fmt.Sprint(map[string]time.Duration(b)) }

func (b budgets) Set(v string) error {
	pkg, d, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want PACKAGE=DURATION, got %q", v)
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur <= 0 {
		return fmt.Errorf("timeout of %s: %q is not a positive duration", pkg, d)
	}
	b[pkg] = dur
	return nil
}

// extraFlags maps a package to go test flags of its own (repeatable: they add up).
type extraFlags map[string][]string

func (f extraFlags) String() string { return fmt.Sprint(map[string][]string(f)) }

func (f extraFlags) Set(v string) error {
	pkg, flags, ok := strings.Cut(v, "=")
	if !ok || !strings.HasPrefix(flags, "-") {
		return fmt.Errorf("want PACKAGE=-flag[=value], got %q", v)
	}
	f[pkg] = append(f[pkg], flags)
	return nil
}

// event is one line of `go test -json`.
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// outcome is what one package's run came to.
type outcome struct {
	pkg      string
	took     time.Duration
	budget   time.Duration
	status   string // ok, FAIL, timeout, no tests
	passed   int
	failed   int
	skipped  int
	slowest  []testTime
	report   []byte // what to print: go test's own lines for the package
	runError error
}

type testTime struct {
	name string
	took time.Duration
}

func main() {
	timeouts := budgets{}
	flag.Var(timeouts, "timeout", "PACKAGE=DURATION: that package's go test -timeout (repeatable)")
	own := extraFlags{}
	flag.Var(own, "flags", "PACKAGE=-flag: a go test flag for that package alone (repeatable)")
	fallback := flag.Duration("default", 2*time.Minute, "the -timeout of every package the table does not name")
	parallel := flag.Int("p", 2, "packages run side by side")
	eventsDir := flag.String("events", os.Getenv("GOTEST_EVENTS"), "a folder to keep each package's go test -json events in, to see where the time went (env GOTEST_EVENTS)")
	flag.Parse()
	goArgs, pkgArgs := splitArgs(flag.Args())
	patterns := pkgArgs
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	pkgs, err := list(patterns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotest:", err)
		os.Exit(2)
	}
	named := slices.Collect(maps.Keys(timeouts))
	named = append(named, slices.Collect(maps.Keys(own))...)
	for _, name := range named {
		if !slices.ContainsFunc(pkgs, func(p pkgPath) bool { return p.matches(name) }) && len(pkgArgs) == 0 {
			fmt.Fprintf(os.Stderr, "gotest: a table names %s, which is not among the packages tested\n", name)
			os.Exit(2)
		}
	}

	// Slowest budgets first, so the long poles start at once and the rest fill in beside them.
	slices.SortStableFunc(pkgs, func(a, b pkgPath) int {
		return cmp.Compare(budgetOf(timeouts, *fallback, b), budgetOf(timeouts, *fallback, a))
	})
	start := time.Now()
	results := make([]outcome, len(pkgs))
	var mu sync.Mutex // serialises what reaches stdout
	queue := make(chan int, len(pkgs))
	for i := range pkgs {
		queue <- i // in order: the long poles first
	}
	close(queue)
	var wg sync.WaitGroup
	for range max(1, *parallel) {
		wg.Go(func() {
			for i := range queue {
				p := pkgs[i]
				o := run(p, budgetOf(timeouts, *fallback, p), *eventsDir, append(slices.Clone(goArgs), append(own[p.rel], own[p.importPath]...)...))
				mu.Lock()
				os.Stdout.Write(o.report)
				mu.Unlock()
				results[i] = o
			}
		})
	}
	wg.Wait()
	os.Exit(summarize(os.Stdout, results, time.Since(start)))
}

// splitArgs separates go test flags (and their values: -run Fleet) from package patterns,
// which start with "." or "/" (./ci, ./...).
func splitArgs(args []string) (goArgs, pkgs []string) {
	for _, a := range args {
		if strings.HasPrefix(a, ".") || strings.HasPrefix(a, "/") {
			pkgs = append(pkgs, a)
		} else {
			goArgs = append(goArgs, a)
		}
	}
	return goArgs, pkgs
}

type pkgPath struct{ importPath, rel string }

func (p pkgPath) matches(name string) bool { return name == p.importPath || name == p.rel }

func budgetOf(b budgets, fallback time.Duration, p pkgPath) time.Duration {
	if d, ok := b[p.rel]; ok {
		return d
	}
	if d, ok := b[p.importPath]; ok {
		return d
	}
	return fallback
}

// list expands patterns into the packages that have tests.
func list(patterns []string) ([]pkgPath, error) {
	out, err := exec.Command("go", append([]string{"list", "-f", "{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}"}, patterns...)...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("go list: %s", exit.Stderr)
		}
		return nil, fmt.Errorf("go list: %w", err)
	}
	wd, _ := os.Getwd()
	var pkgs []pkgPath
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		importPath, dir, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		rel := "./" + strings.TrimPrefix(strings.TrimPrefix(dir, wd), "/")
		if dir == wd {
			rel = "."
		}
		pkgs = append(pkgs, pkgPath{importPath: importPath, rel: rel})
	}
	return pkgs, nil
}

// run tests one package and gathers what go test says about it; with eventsDir set, it keeps
// the package's raw events there (its import path, slashes as underscores, .json).
func run(p pkgPath, budget time.Duration, eventsDir string, goArgs []string) outcome {
	o := outcome{pkg: p.rel, budget: budget}
	args := append([]string{"test", "-json", "-timeout", budget.String()}, goArgs...)
	args = append(args, p.rel)
	// go test stops the binary at its -timeout; this is for a build or a leaked child that keeps
	// the output open past it.
	ctx, cancel := context.WithTimeout(context.Background(), budget+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		o.runError = err
		return finish(o, nil, stderr.Bytes())
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "%s gotest: %s started (timeout %s)\n", start.Format("15:04:05"), p.rel, budget)
	if err := cmd.Start(); err != nil {
		o.runError = err
		return finish(o, nil, stderr.Bytes())
	}
	var events io.Reader = stdout
	if eventsDir != "" {
		f, err := os.Create(filepath.Join(eventsDir, strings.ReplaceAll(p.importPath, "/", "_")+".json"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "gotest: keep the events of %s: %v\n", p.rel, err)
		} else {
			defer f.Close()
			events = io.TeeReader(stdout, f)
		}
	}
	lines := collect(events, &o)
	o.runError = cmd.Wait()
	o.took = time.Since(start)
	if ctx.Err() != nil {
		o.runError = fmt.Errorf("go test did not exit within %s of its timeout: %w", 2*time.Minute, ctx.Err())
	}
	return finish(o, lines, stderr.Bytes())
}

// collect reads go test's events: counts, test times, and the output worth printing (the
// package's own lines and every failed test's, as plain go test prints them).
func collect(r io.Reader, o *outcome) []string {
	byTest := map[string][]string{}
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			lines = append(lines, sc.Text()+"\n") // a build error, say
			continue
		}
		switch {
		case e.Action == "output" && e.Test == "":
			lines = append(lines, e.Output)
		case e.Action == "output":
			byTest[e.Test] = append(byTest[e.Test], e.Output)
		case e.Test != "" && e.Action == "fail":
			o.failed++
			lines = append(lines, byTest[e.Test]...)
		case e.Test != "" && e.Action == "pass":
			o.passed++
		case e.Test != "" && e.Action == "skip":
			o.skipped++
		}
		if e.Test != "" && !strings.Contains(e.Test, "/") && (e.Action == "pass" || e.Action == "fail") {
			o.slowest = append(o.slowest, testTime{e.Test, time.Duration(e.Elapsed * float64(time.Second))})
		}
		if e.Test != "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") {
			delete(byTest, e.Test)
		}
	}
	// Tests still running when the binary died (a timeout's panic names them).
	for _, out := range byTest {
		lines = append(lines, out...)
	}
	return lines
}

func finish(o outcome, lines []string, stderr []byte) outcome {
	var b bytes.Buffer
	text := strings.Join(lines, "")
	switch {
	case strings.Contains(text, "panic: test timed out after"), o.runError != nil && errors.Is(o.runError, context.DeadlineExceeded):
		o.status = "timeout"
	case o.runError != nil || o.failed > 0:
		o.status = "FAIL"
	case o.passed == 0 && o.failed == 0:
		o.status = "no tests"
	default:
		o.status = "ok"
	}
	if o.status == "ok" || o.status == "no tests" {
		// Only go test's own closing line for the package, as plain go test prints it.
		for _, l := range lines {
			if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "ok\t") || strings.HasPrefix(l, "?") {
				b.WriteString(l)
			}
		}
	} else {
		b.WriteString(text)
		b.Write(stderr)
		if o.status == "timeout" {
			fmt.Fprintf(&b, "gotest: package %s ran out of its %s timeout (the table in hack/test.sh)\n", o.pkg, o.budget)
		} else if o.runError != nil && o.failed == 0 {
			fmt.Fprintf(&b, "gotest: package %s: %v\n", o.pkg, o.runError)
		}
	}
	o.report = b.Bytes()
	return o
}

// summarize prints the package table, slowest first, the slowest tests, and the closing
// count; it returns the exit status.
func summarize(w io.Writer, results []outcome, took time.Duration) int {
	slices.SortFunc(results, func(a, b outcome) int { return cmp.Compare(b.took, a.took) })
	fmt.Fprintf(w, "\npackage times, slowest first (wall %s):\n", took.Round(time.Second))
	fmt.Fprintf(w, "  %-34s %8s %8s  %-8s %s\n", "package", "took", "timeout", "status", "tests")
	var passed, failed, skipped int
	var tests []testTime
	status := 0
	for _, o := range results {
		fmt.Fprintf(w, "  %-34s %8s %8s  %-8s %d passed, %d failed, %d skipped\n", o.pkg, o.took.Round(100*time.Millisecond), o.budget, o.status, o.passed, o.failed, o.skipped)
		passed, failed, skipped = passed+o.passed, failed+o.failed, skipped+o.skipped
		for _, t := range o.slowest {
			tests = append(tests, testTime{o.pkg + " " + t.name, t.took})
		}
		if o.status == "FAIL" || o.status == "timeout" {
			status = 1
			if o.failed == 0 {
				failed++ // a package that failed without a failed test (build error, timeout in TestMain)
			}
		}
	}
	slices.SortFunc(tests, func(a, b testTime) int { return cmp.Compare(b.took, a.took) })
	fmt.Fprintln(w, "slowest tests:")
	for _, t := range tests[:min(10, len(tests))] {
		fmt.Fprintf(w, "  %8s  %s\n", t.took.Round(100*time.Millisecond), t.name)
	}
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return status
}
