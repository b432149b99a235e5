package iam_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/deploydrill/deploydrill/ci/history"
	"github.com/deploydrill/deploydrill/infra/iam"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

func TestParseS3Location(t *testing.T) {
	tests := []struct {
		name     string
		location string
		want     iam.S3Location
		err      string
	}{
		{"a bucket and a prefix", "s3://drill-history/team/app", iam.S3Location{Bucket: "drill-history", Prefix: "team/app"}, ""},
		{"slashes around the prefix, dropped as the store drops them", "s3://drill-history/team/app/", iam.S3Location{Bucket: "drill-history", Prefix: "team/app"}, ""},
		{"a bucket of its own", "s3://drill-history", iam.S3Location{Bucket: "drill-history"}, ""},
		{"a bucket with dots", "s3://history.drills.example.com/d", iam.S3Location{Bucket: "history.drills.example.com", Prefix: "d"}, ""},
		{"a file path", "history.jsonl", iam.S3Location{}, "want s3://BUCKET/PREFIX"},
		{"another scheme", "gs://drill-history/d", iam.S3Location{}, "want s3://BUCKET/PREFIX"},
		{"no bucket", "s3:///drills", iam.S3Location{}, "no bucket"},
		{"an uppercase bucket", "s3://Drill-History/d", iam.S3Location{}, `bucket "Drill-History": not an S3 bucket name`},
		{"a bucket of two letters", "s3://dh/d", iam.S3Location{}, `bucket "dh": not an S3 bucket name`},
		{"a bucket of 64 characters", "s3://" + strings.Repeat("b", 64), iam.S3Location{}, "not an S3 bucket name"},
		{"a bucket ending in a hyphen", "s3://drill-/d", iam.S3Location{}, "not an S3 bucket name"},
		{"a bucket with an underscore", "s3://drill_history/d", iam.S3Location{}, "not an S3 bucket name"},
		{"a bucket with adjacent dots", "s3://drill..history/d", iam.S3Location{}, "two adjacent dots"},
		{"a bucket named like an IP address", "s3://192.168.5.4/d", iam.S3Location{}, "formatted as an IP address"},
		{"a reserved bucket prefix", "s3://xn--drill/d", iam.S3Location{}, "the prefix xn-- is reserved"},
		{"an access point alias", "s3://drill-history-s3alias/d", iam.S3Location{}, "the suffix -s3alias is reserved"},
		{"a directory bucket", "s3://drill--usw2-az1--x-s3/d", iam.S3Location{}, "directory bucket"},
		{"a wildcard bucket", "s3://drill-*/d", iam.S3Location{}, `bucket "drill-*"`},
		{"a wildcard prefix", "s3://drill-history/team/*", iam.S3Location{}, `prefix "team/*"`},
		{"a prefix with an empty segment", "s3://drill-history/team//app", iam.S3Location{}, `prefix "team//app"`},
		{"a prefix that climbs", "s3://drill-history/team/../other", iam.S3Location{}, `prefix "team/../other"`},
		{"a prefix longer than a key allows", "s3://drill-history/" + strings.Repeat("p", 513), iam.S3Location{}, "at most 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iam.ParseS3Location(tt.location)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want one saying %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.String() != strings.TrimSuffix(tt.location, "/") {
				t.Errorf("String() = %s, want %s", got, strings.TrimSuffix(tt.location, "/"))
			}
		})
	}
}

// request is one S3 call as IAM authorises it: the action, the resource and the condition keys.
type request struct {
	action, resource string
	keys             map[string]string
}

// recordingS3 passes the history store's calls to a real client and keeps each as IAM sees it.
type recordingS3 struct {
	history.S3API
	mu       sync.Mutex
	requests []request
}

var _ history.S3API = (*recordingS3)(nil)

func (r *recordingS3) record(operation, resource string, keys map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, request{iam.Action(operation), resource, keys})
}

func (r *recordingS3) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	r.record("s3:PutObject", "arn:aws:s3:::"+aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key), nil)
	return r.S3API.PutObject(ctx, in, opts...)
}

func (r *recordingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	r.record("s3:GetObject", "arn:aws:s3:::"+aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key), nil)
	return r.S3API.GetObject(ctx, in, opts...)
}

func (r *recordingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	keys := map[string]string{}
	if in.Prefix != nil {
		keys["s3:prefix"] = *in.Prefix // sent even when empty; absent when nil
	}
	r.record("s3:ListObjectsV2", "arn:aws:s3:::"+aws.ToString(in.Bucket), keys)
	return r.S3API.ListObjectsV2(ctx, in, opts...)
}

// historyRequests runs the real history store at location against an S3 double (two records
// in, then a listing that takes two pages) and returns the requests it made.
func historyRequests(t *testing.T, location string) []request {
	t.Helper()
	l, err := iam.ParseS3Location(location)
	if err != nil {
		t.Fatal(err)
	}
	d := awsdouble.NewS3()
	d.MaxKeys = 1
	d.CreateBucket(l.Bucket)
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	rec := &recordingS3{S3API: s3.New(s3.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDIAMTEST", "iam-secret", ""),
		Retryer:      aws.NopRetryer{},
	})}
	store, err := history.Open(location, rec)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"run-1", "run-2"} {
		r := history.Record{RunID: id, At: at.Add(time.Duration(i) * time.Hour), Target: "aws", Passed: true}
		if err := store.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	records, err := store.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Fatalf("listed %d records, want 2", len(records))
	}
	return rec.requests
}

// TestPolicyAdmitsWhatTheHistoryStoreSends checks every request the real store makes, with
// its condition keys, against the policy for the store's location (all allowed) and against
// a policy for a location next to it (all refused).
func TestPolicyAdmitsWhatTheHistoryStoreSends(t *testing.T) {
	stored, err := iam.Load()
	if err != nil {
		t.Fatal(err)
	}
	rendered := func(location string) iam.Policy {
		l, err := iam.ParseS3Location(location)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := iam.Role{Account: account, Repo: "octo-org/app", Region: "eu-west-1", History: l}.Permissions()
		if err != nil {
			t.Fatal(err)
		}
		p, err := iam.Parse(doc)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name     string
		policy   iam.Policy
		location string // where the store runs
		want     bool
	}{
		{"policy.json, for the location it is written for", stored, "s3://" + iam.StoredHistoryBucket + "/" + iam.StoredHistoryPrefix, true},
		{"rendered for a nested prefix", rendered("s3://octo.drill-history/team/app"), "s3://octo.drill-history/team/app/", true},
		{"rendered for a bucket of its own", rendered("s3://drill-records"), "s3://drill-records", true},
		{"policy.json, the store at a prefix that starts like its own", stored, "s3://" + iam.StoredHistoryBucket + "/" + iam.StoredHistoryPrefix + "-prod", false},
		{"policy.json, the store under the bucket's root", stored, "s3://" + iam.StoredHistoryBucket, false},
		{"rendered for a prefix, the store in a sibling prefix", rendered("s3://drill-history/team/app"), "s3://drill-history/team/other", false},
		{"rendered for a prefix, the store above it", rendered("s3://drill-history/team/app"), "s3://drill-history/team", false},
		{"rendered for a prefix, the store in another bucket", rendered("s3://drill-history/team/app"), "s3://drill-history-2/team/app", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, r := range historyRequests(t, tt.location) {
				seen[r.action] = true
				if got := tt.policy.AllowsRequest(r.action, r.resource, r.keys); got != tt.want {
					t.Errorf("AllowsRequest(%s, %s, %v) = %v, want %v", r.action, r.resource, r.keys, got, tt.want)
				}
			}
			for _, a := range []string{"s3:PutObject", "s3:GetObject", "s3:ListBucket"} {
				if !seen[a] {
					t.Errorf("the store made no %s request: the check above proves less than it says", a)
				}
			}
		})
	}
}

func TestPolicyWithoutHistoryRefusesEveryS3Request(t *testing.T) {
	doc, err := iam.Role{Account: account, Repo: "octo-org/app"}.Permissions()
	if err != nil {
		t.Fatal(err)
	}
	p, err := iam.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range historyRequests(t, "s3://"+iam.StoredHistoryBucket+"/"+iam.StoredHistoryPrefix) {
		if p.AllowsRequest(r.action, r.resource, r.keys) {
			t.Errorf("allows %s on %s, though the role keeps no history in S3", r.action, r.resource)
		}
	}
}
