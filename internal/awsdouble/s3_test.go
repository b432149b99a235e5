package awsdouble_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
)

// s3Serve runs h over HTTP or TLS and returns a real client for it, path-style, no retries.
func s3Serve(t *testing.T, h http.Handler, tls bool) (*s3.Client, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // spare connections closed mid-handshake
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return s3.New(s3.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, HTTPClient: srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDS3DOUBLE", "s3-double-secret", ""),
		Retryer:     aws.NopRetryer{},
		// What s3.NewFromConfig takes from a default config: checksums whenever supported.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}), srv.URL
}

func s3Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func TestS3ServesBucketsAndObjects(t *testing.T) {
	d := awsdouble.NewS3()
	c, _ := s3Serve(t, d, false)
	ctx := t.Context()
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("drills")}); !errors.As(err, new(*types.NotFound)) {
		t.Fatalf("HeadBucket before CreateBucket: got %v, want NotFound", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("drills"), Key: aws.String("a"), Body: strings.NewReader("x")}); s3Code(err) != "NoSuchBucket" {
		t.Fatalf("PutObject before CreateBucket: got %v, want NoSuchBucket", err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("drills"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("drills")}); !errors.As(err, new(*types.BucketAlreadyOwnedByYou)) {
		t.Fatalf("second CreateBucket: got %v, want BucketAlreadyOwnedByYou", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("drills")}); err != nil {
		t.Fatal(err)
	}
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("drills"), Key: aws.String("h/one two.json"), Body: strings.NewReader(`{"a":1}`),
		ContentType: aws.String("application/json"), Metadata: map[string]string{"run": "r1"}})
	if err != nil {
		t.Fatal(err)
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("drills"), Key: aws.String("h/one two.json")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if string(body) != `{"a":1}` || aws.ToString(get.ETag) != aws.ToString(put.ETag) || aws.ToString(get.ContentType) != "application/json" || get.Metadata["run"] != "r1" {
		t.Errorf("GetObject: %q etag %s (put %s) type %s meta %v", body, aws.ToString(get.ETag), aws.ToString(put.ETag), aws.ToString(get.ContentType), get.Metadata)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("drills"), Key: aws.String("h/missing")}); !errors.As(err, new(*types.NoSuchKey)) {
		t.Fatalf("GetObject of a missing key: got %v, want NoSuchKey", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nope"), Key: aws.String("k")}); s3Code(err) != "NoSuchBucket" {
		t.Fatalf("GetObject in a missing bucket: got %v, want NoSuchBucket", err)
	}
	want := []string{"s3:HeadBucket", "s3:PutObject", "s3:CreateBucket", "s3:CreateBucket", "s3:HeadBucket", "s3:PutObject", "s3:GetObject", "s3:GetObject", "s3:GetObject"}
	if got := d.Operations(); !slices.Equal(got, want) {
		t.Errorf("operations %v, want %v", got, want)
	}
}

func TestS3ConditionalWrites(t *testing.T) {
	d := awsdouble.NewS3()
	d.CreateBucket("drills")
	c, _ := s3Serve(t, d, false)
	ctx := t.Context()
	put := func(body string, edit func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
		in := &s3.PutObjectInput{Bucket: aws.String("drills"), Key: aws.String("k"), Body: strings.NewReader(body)}
		edit(in)
		return c.PutObject(ctx, in)
	}
	first, err := put("one", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	if err != nil {
		t.Fatalf("If-None-Match * on a new key: %v", err)
	}
	tests := []struct {
		name string
		edit func(*s3.PutObjectInput)
		want string // error code; "" succeeds
	}{
		{"If-None-Match * refuses an existing key", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }, "PreconditionFailed"},
		{"If-Match with another ETag is refused", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(`"0123"`) }, "PreconditionFailed"},
		{"If-Match with the current ETag replaces", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag }, ""},
		{"If-Match on a missing key is NoSuchKey", func(in *s3.PutObjectInput) { in.Key, in.IfMatch = aws.String("other"), first.ETag }, "NoSuchKey"},
		{"a plain put replaces", func(*s3.PutObjectInput) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := put(tt.name, tt.edit)
			if s3Code(err) != tt.want || tt.want == "" && err != nil {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if objs := d.Objects("drills"); len(objs) != 1 || string(objs[0].Data) != "a plain put replaces" {
		t.Errorf("objects %+v", objs)
	}
}

func TestS3ListObjectsV2(t *testing.T) {
	d := awsdouble.NewS3()
	d.MaxKeys = 2
	for _, k := range []string{"h/2025/a.json", "h/2025/b.json", "h/2026/c.json", "h/d.json", "h/e.json", "h/f.json", "hx/g.json", "top.json"} {
		d.PutRaw("drills", k, []byte(k))
	}
	c, _ := s3Serve(t, d, false)
	tests := []struct {
		name     string
		in       s3.ListObjectsV2Input
		keys     []string
		prefixes []string
		pages    int
	}{
		{"everything, two keys a page", s3.ListObjectsV2Input{}, []string{"h/2025/a.json", "h/2025/b.json", "h/2026/c.json", "h/d.json", "h/e.json", "h/f.json", "hx/g.json", "top.json"}, nil, 4},
		{"under a prefix", s3.ListObjectsV2Input{Prefix: aws.String("h/")}, []string{"h/2025/a.json", "h/2025/b.json", "h/2026/c.json", "h/d.json", "h/e.json", "h/f.json"}, nil, 3},
		{"max-keys below the double's page", s3.ListObjectsV2Input{Prefix: aws.String("h/"), MaxKeys: aws.Int32(1)}, []string{"h/2025/a.json", "h/2025/b.json", "h/2026/c.json", "h/d.json", "h/e.json", "h/f.json"}, nil, 6},
		{"a delimiter groups common prefixes, each one key of a page", s3.ListObjectsV2Input{Prefix: aws.String("h/"), Delimiter: aws.String("/")},
			[]string{"h/d.json", "h/e.json", "h/f.json"}, []string{"h/2025/", "h/2026/"}, 3},
		{"start-after skips to the key after", s3.ListObjectsV2Input{Prefix: aws.String("h/"), StartAfter: aws.String("h/2026/c.json")}, []string{"h/d.json", "h/e.json", "h/f.json"}, nil, 2},
		{"a prefix nothing has", s3.ListObjectsV2Input{Prefix: aws.String("nothing/")}, nil, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Bucket = aws.String("drills")
			var keys, prefixes []string
			pages := 0
			p := s3.NewListObjectsV2Paginator(c, &in)
			for p.HasMorePages() {
				page, err := p.NextPage(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, o := range page.Contents {
					keys = append(keys, aws.ToString(o.Key))
					if aws.ToInt64(o.Size) != int64(len(aws.ToString(o.Key))) || o.LastModified == nil || aws.ToString(o.ETag) == "" {
						t.Errorf("%s: size %d, modified %v, etag %q", aws.ToString(o.Key), aws.ToInt64(o.Size), o.LastModified, aws.ToString(o.ETag))
					}
				}
				for _, cp := range page.CommonPrefixes {
					prefixes = append(prefixes, aws.ToString(cp.Prefix))
				}
			}
			if !slices.Equal(keys, tt.keys) || !slices.Equal(prefixes, tt.prefixes) || pages != tt.pages {
				t.Errorf("keys %v, prefixes %v in %d pages; want %v, %v in %d", keys, prefixes, pages, tt.keys, tt.prefixes, tt.pages)
			}
		})
	}
	if _, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("nope")}); !errors.As(err, new(*types.NoSuchBucket)) {
		t.Errorf("listing a missing bucket: got %v, want NoSuchBucket", err)
	}
}

// TestS3DecodesTheTrailingChecksumOfTLSUploads: over TLS the SDK sends an aws-chunked body
// whose CRC32 trails it; the double must store the payload, not the framing, and answer the
// checksum the SDK then verifies on GetObject.
func TestS3DecodesTheTrailingChecksumOfTLSUploads(t *testing.T) {
	d := awsdouble.NewS3()
	d.CreateBucket("drills")
	var mu sync.Mutex
	var encodings []string
	c, _ := s3Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			mu.Lock()
			encodings = append(encodings, r.Header.Get("Content-Encoding"))
			mu.Unlock()
		}
		d.ServeHTTP(w, r)
	}), true)
	payload := bytes.Repeat([]byte("drill record "), 5000)
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("drills"), Key: aws.String("k"), Body: bytes.NewReader(payload)}); err != nil {
		t.Fatal(err)
	}
	if len(encodings) != 1 || !strings.Contains(encodings[0], "aws-chunked") {
		t.Fatalf("content encodings %q: the SDK did not stream aws-chunked, so this test proves nothing", encodings)
	}
	if objs := d.Objects("drills"); len(objs) != 1 || !bytes.Equal(objs[0].Data, payload) {
		t.Fatal("the stored object is not the payload")
	}
	get, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("drills"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(get.Body) // the SDK checks the CRC32 as it reads
	get.Body.Close()
	if err != nil || !bytes.Equal(body, payload) || aws.ToString(get.ChecksumCRC32) == "" {
		t.Fatalf("GetObject: %d bytes, crc32 %q, %v", len(body), aws.ToString(get.ChecksumCRC32), err)
	}
}

func TestS3AnswersErrorsInS3XML(t *testing.T) {
	d := awsdouble.NewS3()
	d.CreateBucket("drills")
	c, url := s3Serve(t, d, false)
	t.Run("an unsigned request is denied", func(t *testing.T) {
		resp, err := http.Get(url + "/drills/k")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			XMLName   xml.Name `xml:"Error"`
			Code      string   `xml:"Code"`
			RequestID string   `xml:"RequestId"`
		}
		if err := xml.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusForbidden || doc.Code != "AccessDenied" || doc.RequestID == "" {
			t.Fatalf("status %d, %+v, %v", resp.StatusCode, doc, err)
		}
	})
	t.Run("an injected fault fails the calls it names", func(t *testing.T) {
		d.Inject(awsdouble.Fault{Op: "s3:PutObject", Times: 1, Code: "SlowDown", Status: http.StatusServiceUnavailable, Message: "Please reduce your request rate."})
		in := &s3.PutObjectInput{Bucket: aws.String("drills"), Key: aws.String("k"), Body: strings.NewReader("x")}
		if _, err := c.PutObject(t.Context(), in); s3Code(err) != "SlowDown" {
			t.Fatalf("first put: got %v, want SlowDown", err)
		}
		in.Body = strings.NewReader("x")
		if _, err := c.PutObject(t.Context(), in); err != nil {
			t.Fatalf("second put: %v", err)
		}
	})
	t.Run("a bad checksum is refused", func(t *testing.T) {
		_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("drills"), Key: aws.String("bad"), Body: strings.NewReader("x"),
			ChecksumCRC32: aws.String("AAAAAA==")})
		if s3Code(err) != "BadDigest" {
			t.Fatalf("got %v, want BadDigest", err)
		}
	})
}
