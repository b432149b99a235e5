package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3API is the part of the S3 client the S3 store uses, with the SDK's signatures so that
// *s3.Client fits unchanged. Its methods are the store's whole IAM footprint: s3:PutObject,
// s3:GetObject and s3:ListBucket (for ListObjectsV2) on the bucket and prefix.
type S3API interface {
	PutObject(ctx context.Context, params *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, params *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, params *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ S3API = (*s3.Client)(nil)

// s3Store keeps one object per record, <prefix>/<at, RFC 3339 basic>-<run id>.json: keys sort
// by time, and concurrent drills never write the same key (PutObject with If-None-Match: *
// refuses to overwrite one that exists).
type s3Store struct {
	client         S3API
	bucket, prefix string
}

const (
	keyTime = "20060102T150405Z"
	// maxObject bounds what List reads of one object; a record is well under a kilobyte.
	maxObject = 1 << 20
	// getWorkers is how many objects List reads at once.
	getWorkers = 8
)

// runIDRE keeps a run id usable in an object key.
var runIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (s *s3Store) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

func (s *s3Store) key(r Record) string {
	name := r.At.UTC().Format(keyTime) + "-" + r.RunID + ".json"
	if s.prefix == "" {
		return name
	}
	return s.prefix + "/" + name
}

func (s *s3Store) Append(ctx context.Context, r Record) error {
	r, err := normalize(r)
	if err != nil {
		return fmt.Errorf("append to history %s: %w", s, err)
	}
	if !runIDRE.MatchString(r.RunID) {
		return fmt.Errorf("append to history %s: run id %q cannot name an object: want letters, digits, '.', '_' or '-'", s, r.RunID)
	}
	body, err := encode(r)
	if err != nil {
		return fmt.Errorf("append to history %s: %w", s, err)
	}
	key := s.key(r)
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
		IfNoneMatch: aws.String("*"),
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "PreconditionFailed" || apiErr.ErrorCode() == "ConditionalRequestConflict") {
		return fmt.Errorf("append record %s: s3://%s/%s already exists (run id reused?); it was not overwritten: %w", r.RunID, s.bucket, key, err)
	}
	if err != nil {
		return fmt.Errorf("append record %s to s3://%s/%s: %w", r.RunID, s.bucket, key, err)
	}
	return nil
}

func (s *s3Store) List(ctx context.Context) ([]Record, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	records := make([]Record, len(keys))
	errs := make([]error, len(keys))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(getWorkers, len(keys)) {
		wg.Go(func() {
			for i := range next {
				records[i], errs[i] = s.get(ctx, keys[i])
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()

	var bad []error
	nbad := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		var cerr *CorruptError
		if !errors.As(err, &cerr) {
			return nil, fmt.Errorf("read history %s: %w", s, err) // cannot read: say why, not "corrupt"
		}
		if nbad++; nbad <= maxShownBad {
			bad = append(bad, err)
		}
	}
	if nbad > maxShownBad {
		bad = append(bad, fmt.Errorf("and %d more objects under %s that are not %s records", nbad-maxShownBad, s, Schema))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("read history %s: %w", s, errors.Join(bad...))
	}
	sortByTime(records)
	return records, nil
}

// keys lists the objects under the prefix, in key order (S3 lists in UTF-8 binary order),
// leaving out zero-byte folder markers.
func (s *s3Store) keys(ctx context.Context) ([]string, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
	if s.prefix != "" {
		in.Prefix = aws.String(s.prefix + "/")
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list history %s: %w", s, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, "/") && aws.ToInt64(o.Size) == 0 {
				continue
			}
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// get reads one record; an object that is not one is a *CorruptError naming its key.
func (s *s3Store) get(ctx context.Context, key string) (Record, error) {
	where := "s3://" + s.bucket + "/" + key
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return Record{}, fmt.Errorf("get %s: %w", where, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxObject+1))
	if err != nil {
		return Record{}, fmt.Errorf("get %s: %w", where, err)
	}
	if len(data) > maxObject {
		return Record{}, &CorruptError{Location: where, Err: fmt.Errorf("larger than %d bytes: not a %s record", maxObject, Schema)}
	}
	r, err := decode(bytes.TrimSpace(data))
	if err != nil {
		return Record{}, &CorruptError{Location: where, Err: err}
	}
	if want := s.key(r); want != key {
		return Record{}, &CorruptError{Location: where, Err: fmt.Errorf("record of run %s at %s belongs under key %s", r.RunID, r.At.UTC().Format(keyTime), want)}
	}
	return r, nil
}
