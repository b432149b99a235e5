package history_test

import (
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/deploydrill/deploydrill/ci/history"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// fakeS3 is an S3API whose calls panic: for tests that must not reach S3.
type fakeS3 struct{ history.S3API }

var _ history.S3API = (*fakeS3)(nil)

// startS3 serves an S3 double with the bucket "drills" and returns it with a real client.
func startS3(t *testing.T, tls bool, maxKeys int) (*awsdouble.S3, *s3.Client) {
	t.Helper()
	d := awsdouble.NewS3()
	d.MaxKeys = maxKeys
	d.Now = func() time.Time { return day1 }
	d.CreateBucket("drills")
	srv := httptest.NewUnstartedServer(d)
	// The transport may dial a spare connection it never uses; its handshake ends with Close.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	c := s3.New(s3.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDHISTORYTEST", "history-secret", ""),
		HTTPClient:   srv.Client(),
		Retryer:      aws.NopRetryer{},
		// What s3.NewFromConfig takes from a default config: checksums whenever supported.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	})
	return d, c
}

func openS3(t *testing.T, location string, c history.S3API) history.Store {
	t.Helper()
	s, err := history.Open(location, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3StoreRoundTripsRecordsInKeyOrder(t *testing.T) {
	tests := []struct {
		name string
		tls  bool
	}{
		{"over plain HTTP the checksum goes in a header", false},
		{"over TLS the SDK streams aws-chunked with a trailing checksum", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, c := startS3(t, tt.tls, 2) // pages of two keys
			s := openS3(t, "s3://drills/team/app/", c)
			drills := series(1200, 900, 1500, 1100, 1300)
			drills[3].TTRMS = nil
			for _, i := range []int{4, 1, 0, 3, 2} {
				if err := s.Append(t.Context(), drills[i]); err != nil {
					t.Fatal(err)
				}
			}
			d.PutRaw("drills", "team/app/", nil)                       // a console "folder"
			d.PutRaw("drills", "team/application/x.json", []byte("x")) // next to the prefix, not under it
			got, err := s.List(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for i := range drills {
				drills[i].Schema = history.Schema
			}
			if !reflect.DeepEqual(got, drills) {
				t.Errorf("listed:\n%+v\nwant:\n%+v", got, drills)
			}
			var keys []string
			for _, o := range d.Objects("drills") {
				if strings.HasSuffix(o.Key, ".json") && strings.HasPrefix(o.Key, "team/app/") {
					keys = append(keys, o.Key)
					if o.ContentType != "application/json" {
						t.Errorf("%s: content type %q", o.Key, o.ContentType)
					}
				}
			}
			want := []string{"team/app/20250301T090000Z-run-001.json", "team/app/20250302T090000Z-run-002.json", "team/app/20250303T090000Z-run-003.json",
				"team/app/20250304T090000Z-run-004.json", "team/app/20250305T090000Z-run-005.json"}
			if !slices.Equal(keys, want) {
				t.Errorf("keys %v, want %v", keys, want)
			}
		})
	}
}

// TestS3StoreCallsOnlyWhatItsInterfaceLists keeps the IAM policy honest: every call the
// store made is a method of S3API, and every method of S3API was called.
func TestS3StoreCallsOnlyWhatItsInterfaceLists(t *testing.T) {
	d, c := startS3(t, false, 1)
	s := openS3(t, "s3://drills/h", c)
	for _, r := range series(1000, 1100) {
		if err := s.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.List(t.Context()); err != nil {
		t.Fatal(err)
	}
	var api []string
	typ := reflect.TypeFor[history.S3API]()
	for i := range typ.NumMethod() {
		api = append(api, "s3:"+typ.Method(i).Name)
	}
	served := slices.Clone(d.Operations())
	slices.Sort(served)
	served = slices.Compact(served)
	if !slices.Equal(served, api) {
		t.Errorf("the store called %v; S3API lists %v", served, api)
	}
}

func TestS3StoreNeverOverwritesARecord(t *testing.T) {
	d, c := startS3(t, false, 0)
	s := openS3(t, "s3://drills/h", c)
	first := drillRecord(1, 500, 1000)
	if err := s.Append(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	before := d.Objects("drills")
	again := first
	again.TTRMS = history.Float(9999) // another drill that reused the run id within the second
	err := s.Append(t.Context(), again)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "PreconditionFailed" {
		t.Fatalf("got %v, want PreconditionFailed", err)
	}
	for _, w := range []string{"s3://drills/h/20250301T090000Z-run-001.json already exists", "not overwritten"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q: %v", w, err)
		}
	}
	if after := d.Objects("drills"); !reflect.DeepEqual(after, before) {
		t.Errorf("the object changed:\n%s\nwant:\n%s", after[0].Data, before[0].Data)
	}
}

func TestS3StoreListNamesTheObjectItCannotRead(t *testing.T) {
	tests := []struct {
		name string
		key  string
		data string
		want string
	}{
		{"an object that is not JSON", "h/notes.txt", "remember the milk", "not JSON"},
		{"a record of another schema", "h/20250301T090000Z-x.json", `{"schema":"deploydrill.report/v1"}`, `schema "deploydrill.report/v1"`},
		{"a record under a key that is not its own", "h/20250309T090000Z-run-001.json", "", "belongs under key h/20250301T090000Z-run-001.json"},
		{"an object too large to be a record", "h/big.json", strings.Repeat(" ", 1<<20+1), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, c := startS3(t, false, 0)
			s := openS3(t, "s3://drills/h", c)
			if err := s.Append(t.Context(), drillRecord(2, 500, 1000)); err != nil {
				t.Fatal(err)
			}
			data := tt.data
			if data == "" {
				data = line(t, 1)
			}
			d.PutRaw("drills", tt.key, []byte(data))
			got, err := s.List(t.Context())
			if err == nil {
				t.Fatalf("listed %d records, want an error", len(got))
			}
			var cerr *history.CorruptError
			if !errors.As(err, &cerr) || cerr.Location != "s3://drills/"+tt.key {
				t.Errorf("error does not name the object s3://drills/%s: %v", tt.key, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not say %q: %v", tt.want, err)
			}
		})
	}
}

func TestS3StoreSaysWhyItCannotReachTheBucket(t *testing.T) {
	d, c := startS3(t, false, 0)
	tests := []struct {
		name string
		call func(history.Store) error
		want string
	}{
		{"listing a missing bucket", func(s history.Store) error { _, err := s.List(t.Context()); return err }, "NoSuchBucket"},
		{"appending to a missing bucket", func(s history.Store) error { return s.Append(t.Context(), drillRecord(1, 1, 1)) }, "NoSuchBucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(openS3(t, "s3://no-such-bucket/h", c))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "s3://no-such-bucket/h") {
				t.Fatalf("got %v, want %s naming the location", err, tt.want)
			}
			var cerr *history.CorruptError
			if errors.As(err, &cerr) {
				t.Errorf("a missing bucket is not a corrupt history: %v", err)
			}
		})
	}
	t.Run("a failed read is not reported as a corrupt record", func(t *testing.T) {
		s := openS3(t, "s3://drills/h", c)
		if err := s.Append(t.Context(), drillRecord(1, 500, 1000)); err != nil {
			t.Fatal(err)
		}
		d.Inject(awsdouble.Fault{Op: "s3:GetObject", Code: "InternalError", Status: 500, Message: "We encountered an internal error."})
		_, err := s.List(t.Context())
		var cerr *history.CorruptError
		if err == nil || errors.As(err, &cerr) || !strings.Contains(err.Error(), "InternalError") {
			t.Fatalf("got %v, want the InternalError", err)
		}
	})
	t.Run("a run id that cannot name an object is refused", func(t *testing.T) {
		r := drillRecord(1, 500, 1000)
		r.RunID = "../escape"
		err := openS3(t, "s3://drills/h", c).Append(t.Context(), r)
		if err == nil || !strings.Contains(err.Error(), "cannot name an object") {
			t.Fatalf("got %v", err)
		}
	})
}
