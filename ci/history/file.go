package history

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// fileStore is a JSON Lines file, one record per line. An append is one write(2) of the whole
// line on a file opened with O_APPEND, under an exclusive flock: two drills at once never
// interleave records. A missing file is an empty history.
type fileStore struct{ path string }

// maxShownBad is how many unreadable lines List names before counting the rest.
const maxShownBad = 3

func (s *fileStore) Append(ctx context.Context, r Record) error {
	r, err := normalize(r)
	if err != nil {
		return fmt.Errorf("append to history %s: %w", s.path, err)
	}
	line, err := encode(r)
	if err != nil {
		return fmt.Errorf("append to history %s: %w", s.path, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append to history %s: %w", s.path, err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("append to history %s: %w", s.path, err)
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append to history: %w", err)
	}
	defer f.Close() // releases the lock
	if err := lock(ctx, f, true); err != nil {
		return fmt.Errorf("append to history: %w", err)
	}
	glue, err := s.checkTail(f)
	if err != nil {
		return fmt.Errorf("append record %s: %w", r.RunID, err)
	}
	if glue {
		line = append([]byte{'\n'}, line...)
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("append to history %s: %w", s.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append to history %s: %w", s.path, err)
	}
	return nil
}

// checkTail makes sure the file ends with a complete record (or is empty), so the new line
// starts a line of its own. A last record that lacks only its newline is kept and glued
// (the caller writes the newline first); anything else is refused, and the file left as is.
func (s *fileStore) checkTail(f *os.File) (glue bool, err error) {
	info, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("read history: %w", err)
	}
	size := info.Size()
	const chunk = 64 << 10
	var tail []byte
	off := size
	for off > 0 {
		n := min(chunk, off)
		off -= n
		buf := make([]byte, n, n+int64(len(tail)))
		if _, err := f.ReadAt(buf, off); err != nil {
			return false, fmt.Errorf("read history %s: %w", s.path, err)
		}
		tail = append(buf, tail...)
		body := bytes.TrimRight(tail, " \t\r\n")
		if len(body) > 0 && bytes.IndexByte(body, '\n') >= 0 {
			break // the whole last line is in tail
		}
	}
	body := bytes.TrimRight(tail, " \t\r\n")
	if len(body) == 0 {
		return len(tail) > 0 && tail[len(tail)-1] != '\n', nil // empty, or blank lines only
	}
	start := bytes.LastIndexByte(body, '\n') + 1
	last := body[start:]
	torn := tail[len(tail)-1] != '\n'
	_, derr := decode(last)
	if derr == nil {
		return torn, nil
	}
	n, err := lineNumber(f, off+int64(start))
	if err != nil {
		return false, fmt.Errorf("read history %s: %w", s.path, err)
	}
	if torn {
		derr = fmt.Errorf("incomplete last line, no newline at the end (a write cut short?): %w", derr)
	}
	return false, fmt.Errorf("%w; nothing was appended: if this is the history file, "+
		"fix or delete line %d (or move the file away to start a new history), then run again", &CorruptError{Location: s.path, Line: n, Err: derr}, n)
}

// lineNumber is the number of the line that starts at offset.
func lineNumber(f *os.File, offset int64) (int, error) {
	n := 1
	r := bufio.NewReader(io.NewSectionReader(f, 0, offset))
	for {
		b, err := r.ReadSlice('\n')
		if len(b) > 0 && b[len(b)-1] == '\n' {
			n++
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

func (s *fileStore) List(ctx context.Context) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read history %s: %w", s.path, err)
	}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return []Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer f.Close()
	if err := lock(ctx, f, false); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	records := []Record{}
	var bad []error
	nbad := 0
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read history %s line %d: %w", s.path, n, err)
		}
		if body := bytes.TrimSpace(line); len(body) > 0 {
			rec, derr := decode(body)
			if derr == nil {
				records = append(records, rec)
			} else if nbad++; nbad <= maxShownBad {
				bad = append(bad, &CorruptError{Location: s.path, Line: n, Err: derr})
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if nbad > maxShownBad {
		bad = append(bad, fmt.Errorf("and %d more lines of %s that are not %s records", nbad-maxShownBad, s.path, Schema))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("read history: %w", errors.Join(bad...))
	}
	sortByTime(records)
	return records, nil
}

// sortByTime orders records oldest first, keeping the stored order of equal times.
func sortByTime(records []Record) {
	slices.SortStableFunc(records, func(a, b Record) int { return a.At.Compare(b.At) })
}
