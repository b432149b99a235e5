package history

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Store keeps the records of every drill.
type Store interface {
	// Append adds one record. It refuses a store it could not read back safely.
	Append(ctx context.Context, r Record) error
	// List returns every record, oldest first. An entry that is not a record of this schema
	// is an error (a *CorruptError naming it), never skipped.
	List(ctx context.Context) ([]Record, error)
}

var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)

// Open returns the store at location: s3://bucket/prefix is the S3 store (through client,
// which is only needed then), anything else a path to a JSON Lines file. The default path is
// the caller's: an empty location is an error. Open does no I/O.
func Open(location string, client S3API) (Store, error) {
	switch {
	case location == "":
		return nil, errors.New("open history: no location: give a file path or s3://bucket/prefix")
	case strings.HasPrefix(location, "s3://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(location, "s3://"), "/")
		if bucket == "" {
			return nil, fmt.Errorf("open history %s: no bucket: want s3://bucket/prefix", location)
		}
		if client == nil {
			return nil, fmt.Errorf("open history %s: no S3 client", location)
		}
		return &s3Store{client: client, bucket: bucket, prefix: strings.Trim(prefix, "/")}, nil
	case schemeRE.MatchString(location):
		return nil, fmt.Errorf("open history %s: unsupported scheme: want a file path or s3://bucket/prefix", location)
	}
	return &fileStore{path: location}, nil
}
