package remote

import "strings"

// Quote returns s as one POSIX shell word. Words made only of characters no shell treats specially
// are returned as they are, so logs stay readable; anything else is wrapped in single quotes, inside
// which nothing is special, and each single quote becomes close-quote, backslash-quote, reopen.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isPlainWord(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each element of argv and joins them with spaces into one shell command line.
func Join(argv []string) string {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = Quote(a)
	}
	return strings.Join(quoted, " ")
}

// isPlainWord reports whether every byte of s is in a set no POSIX shell (nor bash) expands, splits
// or interprets in any position. '=' is left out because a first word like A=b is an assignment,
// '~' and '#' because they are special at the start of a word.
func isPlainWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_./:,@%+", c) >= 0:
		default:
			return false
		}
	}
	return true
}
