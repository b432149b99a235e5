package awsdouble

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// S3 is an in-process stand-in for S3 that speaks its REST/XML protocol to the real
// aws-sdk-go-v2 s3 client with path-style addressing (UsePathStyle and BaseEndpoint pointing at
// an httptest server running it). It serves CreateBucket, HeadBucket, ListObjectsV2, PutObject
// (conditional writes with If-None-Match: * and If-Match), GetObject, HeadObject and
// DeleteObject, verifies the checksums the SDK sends (in headers, or as trailers of an
// aws-chunked body over TLS) and answers errors in S3's XML error format. A bucket must exist
// before objects go in it: CreateBucket through the SDK, or the CreateBucket helper.
//
//	s := awsdouble.NewS3()
//	s.CreateBucket("drills")
//	srv := httptest.NewServer(s)
//	client := s3.New(s3.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
//		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})
//
// Set the exported fields before the first request.
type S3 struct {
	// Now is the clock of LastModified; default time.Now.
	Now func() time.Time
	// MaxKeys caps the keys of one ListObjectsV2 page, as S3 caps them at 1000 (the default):
	// lower it to exercise pagination.
	MaxKeys int

	mu      sync.Mutex
	buckets map[string]*s3Bucket
	ops     []string
	faults  []*s3Fault
	seq     int
}

// s3Fault is an injected fault and how many calls it has seen.
type s3Fault struct {
	Fault
	seen int
}

type s3Bucket struct {
	created time.Time
	objects map[string]*s3Object
}

type s3Object struct {
	data         []byte
	etag         string // quoted hex MD5, as S3 answers it
	contentType  string
	lastModified time.Time
	checksums    map[string]string // header name (x-amz-checksum-crc32) -> base64 value
	meta         map[string]string // x-amz-meta-* headers, canonical names
}

// S3Object is a snapshot of one stored object for assertions.
type S3Object struct {
	Key          string
	Data         []byte
	ETag         string
	ContentType  string
	LastModified time.Time
}

// NewS3 returns an S3 double with no buckets.
func NewS3() *S3 {
	return &S3{buckets: map[string]*s3Bucket{}}
}

// CreateBucket makes a bucket, as the CreateBucket call would; an existing bucket is kept.
func (s *S3) CreateBucket(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[name] == nil {
		s.buckets[name] = &s3Bucket{created: s.now(), objects: map[string]*s3Object{}}
	}
}

// PutRaw stores an object as is, bypassing the API (to plant a corrupt or foreign object).
// The bucket is created if needed.
func (s *S3) PutRaw(bucket, key string, data []byte) {
	s.CreateBucket(bucket)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buckets[bucket].objects[key] = s.newObject(data, "application/octet-stream", nil, nil)
}

// Objects lists the objects of a bucket in key order; nil when the bucket does not exist.
func (s *S3) Objects(bucket string) []S3Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil
	}
	out := []S3Object{}
	for _, k := range s3SortedKeys(b.objects) {
		o := b.objects[k]
		out = append(out, S3Object{Key: k, Data: slices.Clone(o.data), ETag: o.etag, ContentType: o.contentType, LastModified: o.lastModified})
	}
	return out
}

// Operations lists every operation served so far, in order, as "s3:Operation" (the name of
// the SDK call, e.g. "s3:ListObjectsV2", whose IAM action is s3:ListBucket).
func (s *S3) Operations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ops)
}

// Inject makes calls to one operation ("s3:PutObject") fail with an S3 error; faults on the
// same operation apply in the order added.
func (s *S3) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Status == 0 {
		f.Status = http.StatusBadRequest
	}
	if f.Message == "" {
		f.Message = "injected fault"
	}
	s.faults = append(s.faults, &s3Fault{Fault: f})
}

// s3Error is an S3 error answer. Extra elements (Key, BucketName, Condition) follow Message.
type s3Error struct {
	status  int
	code    string
	message string
	extra   [][2]string
}

func (e *s3Error) Error() string { return e.code + ": " + e.message }

func s3NoSuchBucket(bucket string) *s3Error {
	return &s3Error{http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist", [][2]string{{"BucketName", bucket}}}
}

func s3NoSuchKey(key string) *s3Error {
	return &s3Error{http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", [][2]string{{"Key", key}}}
}

func s3Invalid(code, format string, args ...any) *s3Error {
	return &s3Error{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

func s3NotImplemented(what string) *s3Error {
	return &s3Error{status: http.StatusNotImplemented, code: "NotImplemented", message: "the S3 double does not implement " + what}
}

// s3Answer is a successful answer: headers, a status (default 200) and an XML document or raw body.
type s3Answer struct {
	status int
	header http.Header
	doc    any
	body   []byte
}

// ServeHTTP routes a path-style request: /bucket for bucket calls, /bucket/key for objects.
func (s *S3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := s.requestID()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	op, handle := s.route(r, bucket, key)
	var ans *s3Answer
	err := s.admit(op, r)
	if err == nil {
		ans, err = handle()
	}
	w.Header().Set("X-Amz-Request-Id", requestID)
	w.Header().Set("X-Amz-Id-2", base64.StdEncoding.EncodeToString([]byte("host-"+requestID)))
	if err != nil {
		s3WriteError(w, r, requestID, bucket, err)
		return
	}
	for k, vs := range ans.header {
		w.Header()[k] = vs
	}
	status := ans.status
	if status == 0 {
		status = http.StatusOK
	}
	body := ans.body
	if ans.doc != nil {
		out, merr := xml.Marshal(ans.doc)
		if merr != nil {
			s3WriteError(w, r, requestID, bucket, &s3Error{status: http.StatusInternalServerError, code: "InternalError", message: merr.Error()})
			return
		}
		body = append([]byte(xml.Header), out...)
		w.Header().Set("Content-Type", "application/xml")
	}
	if w.Header().Get("Content-Length") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (s *S3) route(r *http.Request, bucket, key string) (string, func() (*s3Answer, *s3Error)) {
	q := r.URL.Query()
	switch {
	case bucket == "":
		return "s3:ListBuckets", func() (*s3Answer, *s3Error) { return nil, s3NotImplemented("ListBuckets") }
	case key == "" && r.Method == http.MethodPut:
		return "s3:CreateBucket", func() (*s3Answer, *s3Error) { return s.createBucket(r, bucket) }
	case key == "" && r.Method == http.MethodHead:
		return "s3:HeadBucket", func() (*s3Answer, *s3Error) { return s.headBucket(bucket) }
	case key == "" && r.Method == http.MethodGet && q.Get("list-type") == "2":
		return "s3:ListObjectsV2", func() (*s3Answer, *s3Error) { return s.listObjectsV2(bucket, q) }
	case key == "":
		return "s3:" + r.Method + "Bucket", func() (*s3Answer, *s3Error) {
			return nil, s3NotImplemented(r.Method + " on a bucket " + r.URL.RawQuery)
		}
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "s3:CopyObject", func() (*s3Answer, *s3Error) { return nil, s3NotImplemented("CopyObject") }
	case r.Method == http.MethodPut && !q.Has("uploadId") && !q.Has("tagging") && !q.Has("acl"):
		return "s3:PutObject", func() (*s3Answer, *s3Error) { return s.putObject(r, bucket, key) }
	case r.Method == http.MethodGet && !q.Has("uploadId") && !q.Has("tagging") && !q.Has("acl") && !q.Has("attributes"):
		return "s3:GetObject", func() (*s3Answer, *s3Error) { return s.getObject(r, bucket, key, false) }
	case r.Method == http.MethodHead:
		return "s3:HeadObject", func() (*s3Answer, *s3Error) { return s.getObject(r, bucket, key, true) }
	case r.Method == http.MethodDelete && !q.Has("uploadId"):
		return "s3:DeleteObject", func() (*s3Answer, *s3Error) { return s.deleteObject(bucket, key) }
	}
	return "s3:" + r.Method + "Object", func() (*s3Answer, *s3Error) {
		return nil, s3NotImplemented(r.Method + " on an object " + r.URL.RawQuery)
	}
}

// admit records the call, checks it is signed and decides whether a fault hits it.
func (s *S3) admit(op string, r *http.Request) *s3Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, op)
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		return &s3Error{status: http.StatusForbidden, code: "AccessDenied", message: "the request is not signed with Signature Version 4"}
	}
	for _, f := range s.faults {
		if f.Op != op {
			continue
		}
		f.seen++
		if f.seen > f.Skip && (f.Times == 0 || f.seen <= f.Skip+f.Times) {
			return &s3Error{status: f.Status, code: f.Code, message: f.Message}
		}
	}
	return nil
}

func (s *S3) createBucket(r *http.Request, bucket string) (*s3Answer, *s3Error) {
	if !s3ValidBucket(bucket) {
		return nil, s3Invalid("InvalidBucketName", "The specified bucket is not valid.")
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil { // CreateBucketConfiguration: the region is not modelled
		return nil, s3Invalid("IncompleteBody", "read body: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[bucket] != nil {
		return nil, &s3Error{http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.", [][2]string{{"BucketName", bucket}}}
	}
	s.buckets[bucket] = &s3Bucket{created: s.now(), objects: map[string]*s3Object{}}
	return &s3Answer{header: http.Header{"Location": {"/" + bucket}}}, nil
}

func (s *S3) headBucket(bucket string) (*s3Answer, *s3Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets[bucket] == nil {
		return nil, s3NoSuchBucket(bucket)
	}
	return &s3Answer{}, nil
}

type s3ListResult struct {
	XMLName               xml.Name         `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string           `xml:"Name"`
	Prefix                string           `xml:"Prefix"`
	Delimiter             string           `xml:"Delimiter,omitempty"`
	StartAfter            string           `xml:"StartAfter,omitempty"`
	ContinuationToken     string           `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string           `xml:"NextContinuationToken,omitempty"`
	KeyCount              int              `xml:"KeyCount"`
	MaxKeys               int              `xml:"MaxKeys"`
	IsTruncated           bool             `xml:"IsTruncated"`
	Contents              []s3ListEntry    `xml:"Contents"`
	CommonPrefixes        []s3CommonPrefix `xml:"CommonPrefixes"`
}

type s3ListEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type s3CommonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// listObjectsV2 pages through the keys in UTF-8 binary order, as S3 does. A common prefix
// (delimiter) counts as one key; the continuation token is the last key or prefix answered.
func (s *S3) listObjectsV2(bucket string, q map[string][]string) (*s3Answer, *s3Error) {
	get := func(name string) string {
		if v := q[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	prefix, delimiter, startAfter, token := get("prefix"), get("delimiter"), get("start-after"), get("continuation-token")
	if et := get("encoding-type"); et != "" && et != "url" {
		return nil, s3Invalid("InvalidArgument", "Invalid Encoding Method specified in Request")
	}
	limit := s.MaxKeys
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	maxKeys := limit
	if mk := get("max-keys"); mk != "" {
		n, err := strconv.Atoi(mk)
		if err != nil || n < 0 {
			return nil, s3Invalid("InvalidArgument", "max-keys must be a non-negative integer, got %q", mk)
		}
		maxKeys = min(n, 1000)
	}
	after, afterPrefix := startAfter, false
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		kind, item, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok || kind != "k" && kind != "p" {
			return nil, s3Invalid("InvalidArgument", "The continuation token provided is incorrect")
		}
		after, afterPrefix = item, kind == "p"
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil, s3NoSuchBucket(bucket)
	}
	res := &s3ListResult{Name: bucket, Prefix: prefix, Delimiter: delimiter, StartAfter: startAfter, ContinuationToken: token, MaxKeys: maxKeys,
		Contents: []s3ListEntry{}}
	page := min(maxKeys, limit)
	last, lastPrefix := "", false
	for _, k := range s3SortedKeys(b.objects) {
		if !strings.HasPrefix(k, prefix) || k <= after || afterPrefix && strings.HasPrefix(k, after) {
			continue // outside the prefix, or answered on an earlier page
		}
		item, isPrefix := k, false
		if delimiter != "" {
			if i := strings.Index(k[len(prefix):], delimiter); i >= 0 {
				item, isPrefix = k[:len(prefix)+i+len(delimiter)], true
			}
		}
		if isPrefix && lastPrefix && item == last {
			continue
		}
		if res.KeyCount == page {
			res.IsTruncated = true
			break
		}
		res.KeyCount++
		last, lastPrefix = item, isPrefix
		if isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, s3CommonPrefix{item})
			continue
		}
		o := b.objects[k]
		res.Contents = append(res.Contents, s3ListEntry{Key: k, LastModified: o.lastModified.UTC().Format("2006-01-02T15:04:05.000Z"),
			ETag: o.etag, Size: len(o.data), StorageClass: "STANDARD"})
	}
	if res.IsTruncated {
		kind := "k:"
		if lastPrefix {
			kind = "p:"
		}
		res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(kind + last))
	}
	return &s3Answer{doc: res}, nil
}

// s3ChecksumHeaders are the checksum headers S3 accepts, with the hash the double verifies
// (nil: stored and echoed, not verified).
var s3ChecksumHeaders = map[string]func() hash.Hash{
	"X-Amz-Checksum-Crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"X-Amz-Checksum-Crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"X-Amz-Checksum-Sha1":      sha1.New,
	"X-Amz-Checksum-Sha256":    sha256.New,
	"X-Amz-Checksum-Crc64nvme": nil,
}

func (s *S3) putObject(r *http.Request, bucket, key string) (*s3Answer, *s3Error) {
	data, trailers, err := s3ReadBody(r)
	if err != nil {
		return nil, err
	}
	checksums := map[string]string{}
	for name, newHash := range s3ChecksumHeaders {
		v := r.Header.Get(name)
		if t, ok := trailers[name]; ok {
			v = t
		}
		if v == "" {
			continue
		}
		if newHash != nil {
			h := newHash()
			h.Write(data)
			if got := base64.StdEncoding.EncodeToString(h.Sum(nil)); got != v {
				return nil, s3Invalid("BadDigest", "The %s you specified did not match the calculated checksum.", strings.TrimPrefix(name, "X-Amz-Checksum-"))
			}
		}
		checksums[name] = v
	}
	if md := r.Header.Get("Content-Md5"); md != "" {
		sum := md5.Sum(data)
		if base64.StdEncoding.EncodeToString(sum[:]) != md {
			return nil, s3Invalid("BadDigest", "The Content-MD5 you specified did not match what we received.")
		}
	}
	meta := map[string]string{}
	for name, vs := range r.Header {
		if strings.HasPrefix(name, "X-Amz-Meta-") {
			meta[name] = strings.Join(vs, ",")
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil, s3NoSuchBucket(bucket)
	}
	old := b.objects[key]
	switch inm := r.Header.Get("If-None-Match"); {
	case inm == "*" && old != nil:
		return nil, &s3Error{http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", [][2]string{{"Condition", "If-None-Match"}}}
	case inm != "" && inm != "*":
		return nil, s3NotImplemented("If-None-Match other than * on PutObject")
	}
	if im := r.Header.Get("If-Match"); im != "" {
		if old == nil {
			return nil, s3NoSuchKey(key)
		}
		if im != old.etag && im != "*" {
			return nil, &s3Error{http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", [][2]string{{"Condition", "If-Match"}}}
		}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "binary/octet-stream"
	}
	o := s.newObject(data, ct, checksums, meta)
	b.objects[key] = o
	h := http.Header{"Etag": {o.etag}}
	for name, v := range checksums {
		h.Set(name, v)
	}
	return &s3Answer{header: h}, nil
}

func (s *S3) getObject(r *http.Request, bucket, key string, head bool) (*s3Answer, *s3Error) {
	if r.Header.Get("Range") != "" {
		return nil, s3NotImplemented("ranged GetObject")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil, s3NoSuchBucket(bucket)
	}
	o := b.objects[key]
	if o == nil {
		return nil, s3NoSuchKey(key)
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == o.etag || inm == "*") {
		return &s3Answer{status: http.StatusNotModified, header: http.Header{"Etag": {o.etag}}}, nil
	}
	if im := r.Header.Get("If-Match"); im != "" && im != o.etag && im != "*" {
		return nil, &s3Error{http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", [][2]string{{"Condition", "If-Match"}}}
	}
	h := http.Header{
		"Etag":          {o.etag},
		"Content-Type":  {o.contentType},
		"Last-Modified": {o.lastModified.UTC().Format(http.TimeFormat)},
		"Accept-Ranges": {"bytes"},
	}
	for name, v := range o.meta {
		h.Set(name, v)
	}
	if strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		for name, v := range o.checksums {
			h.Set(name, v)
		}
		if len(o.checksums) > 0 {
			h.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
		}
	}
	ans := &s3Answer{header: h, body: slices.Clone(o.data)}
	if head {
		ans.body = nil
		h.Set("Content-Length", strconv.Itoa(len(o.data))) // ServeHTTP keeps it: a HEAD has no body
	}
	return ans, nil
}

func (s *S3) deleteObject(bucket, key string) (*s3Answer, *s3Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		return nil, s3NoSuchBucket(bucket)
	}
	delete(b.objects, key) // deleting a missing key succeeds, as in S3
	return &s3Answer{status: http.StatusNoContent}, nil
}

// newObject builds a stored object. Callers hold s.mu or own the value.
func (s *S3) newObject(data []byte, contentType string, checksums, meta map[string]string) *s3Object {
	sum := md5.Sum(data)
	return &s3Object{data: slices.Clone(data), etag: `"` + hex.EncodeToString(sum[:]) + `"`, contentType: contentType,
		lastModified: s.now().Truncate(time.Second), checksums: checksums, meta: meta}
}

func (s *S3) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *S3) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(s.seq))
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// s3ReadBody reads a PutObject body, decoding aws-chunked content (what the SDK sends over
// TLS with a trailing checksum) and returning its trailers by canonical header name.
func s3ReadBody(r *http.Request) ([]byte, map[string]string, *s3Error) {
	chunked := strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-")
	for _, enc := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
		chunked = chunked || strings.TrimSpace(enc) == "aws-chunked"
	}
	if !chunked {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, nil, s3Invalid("IncompleteBody", "read body: %v", err)
		}
		return data, nil, nil
	}
	data, trailers, err := s3DecodeChunked(bufio.NewReader(r.Body))
	if err != nil {
		return nil, nil, s3Invalid("IncompleteBody", "decode aws-chunked body: %v", err)
	}
	if want := r.Header.Get("X-Amz-Decoded-Content-Length"); want != "" && want != strconv.Itoa(len(data)) {
		return nil, nil, s3Invalid("IncompleteBody", "decoded %d bytes, x-amz-decoded-content-length says %s", len(data), want)
	}
	return data, trailers, nil
}

// s3DecodeChunked decodes "<hex size>[;chunk-signature=...]\r\n<data>\r\n" chunks up to a
// zero-size one, then "name:value\r\n" trailers up to an empty line (or the end).
func s3DecodeChunked(br *bufio.Reader) ([]byte, map[string]string, error) {
	var data bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, nil, fmt.Errorf("chunk header: %w", err)
		}
		sizeHex, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
		if err != nil || size < 0 {
			return nil, nil, fmt.Errorf("chunk size %q: not hexadecimal", sizeHex)
		}
		if size == 0 {
			break
		}
		if _, err := io.CopyN(&data, br, size); err != nil {
			return nil, nil, fmt.Errorf("chunk of %d bytes: %w", size, err)
		}
		if crlf, err := br.ReadString('\n'); err != nil || strings.TrimRight(crlf, "\r\n") != "" {
			return nil, nil, errors.New("chunk not followed by CRLF")
		}
	}
	trailers := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return nil, nil, fmt.Errorf("trailer %q: no colon", line)
			}
			trailers[http.CanonicalHeaderKey(strings.TrimSpace(name))] = strings.TrimSpace(value)
		}
		if err == io.EOF || line == "" {
			return data.Bytes(), trailers, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("trailer: %w", err)
		}
	}
}

// s3WriteError writes S3's XML error document (no body for a HEAD, as S3 does).
func s3WriteError(w http.ResponseWriter, r *http.Request, requestID, bucket string, e *s3Error) {
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString("<Error>")
	elem := func(name, value string) {
		b.WriteString("<" + name + ">")
		_ = xml.EscapeText(&b, []byte(value))
		b.WriteString("</" + name + ">")
	}
	elem("Code", e.code)
	elem("Message", e.message)
	for _, kv := range e.extra {
		elem(kv[0], kv[1])
	}
	elem("RequestId", requestID)
	elem("HostId", w.Header().Get("X-Amz-Id-2"))
	b.WriteString("</Error>")
	w.Header().Set("Content-Type", "application/xml")
	if r.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(e.status)
	_, _ = io.WriteString(w, b.String())
}

// s3ValidBucket follows S3's general-purpose bucket naming rules (3 to 63 characters of
// lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit).
func s3ValidBucket(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i, c := range name {
		edge := i == 0 || i == len(name)-1
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '.') && !edge:
		default:
			return false
		}
	}
	return !strings.Contains(name, "..")
}

func s3SortedKeys(m map[string]*s3Object) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
