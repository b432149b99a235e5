package iam

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// policy.json's history statements are written for s3://deploydrill-history/drills; Role
// renders them for Role.History, or leaves them out when the history is not in S3.
const (
	StoredHistoryBucket = "deploydrill-history"
	StoredHistoryPrefix = "drills"
)

// S3Location is where the drill history keeps one object per drill: under Prefix/ in Bucket,
// or at the top of Bucket when Prefix is empty. The zero value is no location.
type S3Location struct {
	Bucket string
	Prefix string // no leading or trailing slash
}

// maxHistoryPrefix leaves room for a record's name (about 150 bytes) in S3's 1,024-byte keys.
const maxHistoryPrefix = 512

var (
	bucketPattern        = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	prefixSegmentPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// ParseS3Location reads s3://BUCKET/PREFIX as the drill's --history takes it (slashes around
// the prefix are dropped, as the history store drops them) and checks both parts.
func ParseS3Location(location string) (S3Location, error) {
	rest, ok := strings.CutPrefix(location, "s3://")
	if !ok {
		return S3Location{}, fmt.Errorf("%q: want s3://BUCKET/PREFIX", location)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	l := S3Location{Bucket: bucket, Prefix: strings.Trim(prefix, "/")}
	if err := l.validate(); err != nil {
		return S3Location{}, fmt.Errorf("%s: %w", location, err)
	}
	return l, nil
}

// String is the location as s3://BUCKET/PREFIX.
func (l S3Location) String() string {
	if l.Prefix == "" {
		return "s3://" + l.Bucket
	}
	return "s3://" + l.Bucket + "/" + l.Prefix
}

// validate applies S3's naming rules for general purpose buckets, and keeps the prefix to
// plain path segments: IAM would read * and ? as wildcards and ${...} as a policy variable.
func (l S3Location) validate() error {
	b := l.Bucket
	switch {
	case b == "":
		return fmt.Errorf("no bucket: want s3://BUCKET/PREFIX")
	case !bucketPattern.MatchString(b):
		return fmt.Errorf("bucket %q: not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit)", b)
	case strings.Contains(b, ".."):
		return fmt.Errorf("bucket %q: not an S3 bucket name (two adjacent dots)", b)
	case isIPv4(b):
		return fmt.Errorf("bucket %q: not an S3 bucket name (formatted as an IP address)", b)
	case strings.HasSuffix(b, "--x-s3"):
		return fmt.Errorf("bucket %q: a directory bucket (S3 Express One Zone); the history needs a general purpose bucket", b)
	}
	for _, reserved := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, reserved) {
			return fmt.Errorf("bucket %q: not an S3 bucket name (the prefix %s is reserved)", b, reserved)
		}
	}
	for _, reserved := range []string{"-s3alias", "--ol-s3", ".mrap", "--table-s3"} {
		if strings.HasSuffix(b, reserved) {
			return fmt.Errorf("bucket %q: not an S3 bucket name (the suffix %s is reserved for access points and other resources)", b, reserved)
		}
	}
	if l.Prefix == "" {
		return nil
	}
	if len(l.Prefix) > maxHistoryPrefix {
		return fmt.Errorf("prefix of %d characters: at most %d", len(l.Prefix), maxHistoryPrefix)
	}
	for seg := range strings.SplitSeq(l.Prefix, "/") {
		if !prefixSegmentPattern.MatchString(seg) || seg == "." || seg == ".." {
			return fmt.Errorf("prefix %q: want path segments of letters, digits, '.', '_' and '-' (no wildcards, empty or relative segments)", l.Prefix)
		}
	}
	return nil
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// BucketARN is the bucket, the resource of s3:ListBucket. S3 ARNs name neither a region nor
// an account: a bucket name is unique in the partition.
func (l S3Location) BucketARN() string { return "arn:aws:s3:::" + l.Bucket }

// ObjectsARN covers every object under the prefix, the resource of s3:PutObject and
// s3:GetObject.
func (l S3Location) ObjectsARN() string {
	if l.Prefix == "" {
		return l.BucketARN() + "/*"
	}
	return l.BucketARN() + "/" + l.Prefix + "/*"
}

// ListPrefix is the Prefix the history store lists with (ListObjectsV2), which IAM sees as
// the condition key s3:prefix; "" when the store lists the whole bucket, and sends none.
func (l S3Location) ListPrefix() string {
	if l.Prefix == "" {
		return ""
	}
	return l.Prefix + "/"
}
