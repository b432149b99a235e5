package ecr

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/aws/smithy-go"
)

// ErrRepositoryNotFound means the repository does not exist (in this account and region).
var ErrRepositoryNotFound = errors.New("repository does not exist")

// fail words a failed call for people: what was being done ("list images in"), to which
// repository in which region,
// and AWS's error code in words with its message, never the SDK's text alone. The SDK error
// stays reachable with errors.As; a missing repository also matches ErrRepositoryNotFound.
func (r *Repository) fail(what string, err error) error {
	return &callError{what: what, repo: r.name, region: r.region, err: err}
}

type callError struct {
	what, repo, region string
	err                error
}

func (e *callError) Error() string {
	where := "repository " + e.repo
	if e.region != "" {
		where += " (region " + e.region + ")"
	}
	var ae smithy.APIError
	if !errors.As(e.err, &ae) {
		return fmt.Sprintf("%s %s: %v", e.what, where, e.err)
	}
	msg := fmt.Sprintf("%s %s: %s (%s)", e.what, where, codeInWords(ae.ErrorCode()), ae.ErrorCode())
	if m := ae.ErrorMessage(); m != "" {
		msg += ": " + m
	}
	return msg
}

func (e *callError) Unwrap() []error {
	if isCode(e.err, "RepositoryNotFoundException") {
		return []error{e.err, ErrRepositoryNotFound}
	}
	return []error{e.err}
}

// knownCodes are the codes a user meets most, in words; others are split from their CamelCase.
var knownCodes = map[string]string{
	"AccessDeniedException":       "access denied",
	"RepositoryNotFoundException": "the repository does not exist",
	"ImageNotFoundException":      "no such image",
	"ThrottlingException":         "throttled: too many requests",
	"UnrecognizedClientException": "the credentials are not valid",
	"InvalidSignatureException":   "the request signature was refused (check the credentials and the clock)",
	"ExpiredTokenException":       "the credentials have expired",
	"ServerException":             "an error on AWS's side",
}

// codeInWords turns an AWS error code into words: RepositoryNotEmptyException → "repository not empty".
func codeInWords(code string) string {
	if w, ok := knownCodes[code]; ok {
		return w
	}
	code = strings.TrimSuffix(code, "Exception")
	var b strings.Builder
	for i, c := range code {
		if unicode.IsUpper(c) && i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
