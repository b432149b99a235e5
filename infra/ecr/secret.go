package ecr

import (
	"fmt"
	"log/slog"
)

// Secret holds a credential. Every way of printing or encoding it (fmt verbs, JSON, text,
// slog) yields "[redacted]"; only Reveal returns the value, for the one place that needs it
// (docker login's stdin). The value sits behind a pointer so that even a struct holding a
// Secret in an unexported field prints an address, not the password.
type Secret struct{ p *string }

const redacted = "[redacted]"

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{p: &v} }

// Reveal returns the value. Do not log it, put it in argv or an environment variable, or write it to disk.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
