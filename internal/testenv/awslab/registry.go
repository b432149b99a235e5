package awslab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/testenv"
)

// registry is one in-memory OCI registry (go-containerregistry's) standing in for ECR's registry
// endpoint, behind ECR's basic auth (user AWS, the double's token password), served on one port
// in several network namespaces. It keeps to ECR's rules as the double knows them: a push lands
// only in a repository the double has and is recorded there (so DescribeImages lists it and
// immutable tags hold), and a manifest is served only while the double still holds it.
type registry struct {
	*testenv.Registry
	failPulls bool
	port      int
	double    *awsdouble.Double
	account   string
	pending   []net.Listener // opened before the double existed; served by attach
}

// newRegistry listens on the host's loopback and, unless engineNetns is "", at the same port
// inside the engine's network namespace. It serves once attached to the double.
func newRegistry(engineNetns, password string, failPulls bool) (*registry, error) {
	if engineNetns != "" && sameNamespace(engineNetns, "/proc/self/ns/net") {
		engineNetns = "" // the engine shares the host's network: the host listener serves it
	}
	inEngine, onHost, err := listenSamePort(engineNetns)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r := &registry{
		Registry:  testenv.NewRegistry("AWS", password),
		failPulls: failPulls,
		port:      onHost.Addr().(*net.TCPAddr).Port,
	}
	r.pending = append(r.pending, onHost)
	if inEngine != nil {
		r.pending = append(r.pending, inEngine)
	}
	return r, nil
}

// attach starts serving with the double's view of ECR.
func (r *registry) attach(d *awsdouble.Double, account string) {
	r.double, r.account = d, account
	for _, ln := range r.pending {
		r.ServeHandler(ln, http.HandlerFunc(r.ecr))
	}
	r.pending = nil
}

// host is the registry part of image references: 127.0.0.1:P everywhere.
func (r *registry) host() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// serveInNetns adds a listener at the registry's port inside an instance's namespace.
func (r *registry) serveInNetns(netns string) (net.Listener, error) {
	ln, err := testenv.ListenInNetns(netns, "tcp", r.host())
	if err != nil {
		return nil, fmt.Errorf("registry in %s: %w", netns, err)
	}
	var h http.Handler = http.HandlerFunc(r.ecr)
	if r.failPulls {
		h = refuseManifests(h)
	}
	r.ServeHandler(ln, h)
	return ln, nil
}

func (r *registry) close(ctx context.Context) error {
	for _, ln := range r.pending {
		ln.Close()
	}
	r.pending = nil
	return r.Close(ctx)
}

// ecr applies ECR's rules in front of the store.
func (r *registry) ecr(w http.ResponseWriter, req *http.Request) {
	repo, kind, ref := splitPath(req.URL.Path)
	if repo == "" { // /v2/, /v2/_catalog
		r.Store().ServeHTTP(w, req)
		return
	}
	snap, ok := r.double.Repository(repo)
	if !ok {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN",
			fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", repo, r.account))
		return
	}
	if kind != "manifests" {
		r.Store().ServeHTTP(w, req)
		return
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		digest, ok := resolve(snap, ref)
		if !ok {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "Requested image not found")
			return
		}
		// By digest, so a tag means what the double says (verified-<tag> marks are put there).
		req = req.Clone(req.Context())
		req.URL.Path = "/v2/" + repo + "/manifests/" + digest
		r.Store().ServeHTTP(w, req)
	case http.MethodPut:
		r.putManifest(w, req, repo, ref)
	default:
		r.Store().ServeHTTP(w, req)
	}
}

// putManifest stores the manifest, then records it in the double as the registry push ECR
// sees; the double's refusal (an immutable tag on another digest) becomes the push's answer.
func (r *registry) putManifest(w http.ResponseWriter, req *http.Request, repo, ref string) {
	const limit = 4 << 20 // ECR's manifest size limit
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil || len(body) > limit {
		registryError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest unreadable or larger than 4 MiB")
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	r.Store().ServeHTTP(rec, req)
	if rec.Code/100 == 2 {
		tag := ref
		if strings.HasPrefix(ref, "sha256:") {
			tag = ""
		}
		if _, err := r.double.PushImage(repo, tag, body, time.Now()); err != nil {
			var ae smithy.APIError
			errors.As(err, &ae)
			switch {
			case ae != nil && ae.ErrorCode() == "ImageAlreadyExistsException": // the same push again
			case ae != nil && ae.ErrorCode() == "ImageTagAlreadyExistsException":
				registryError(w, http.StatusBadRequest, "TAG_INVALID", ae.ErrorMessage())
				return
			default:
				registryError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
				return
			}
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// resolve finds the digest a manifest reference names in the double's copy of the repository.
func resolve(repo awsdouble.Repository, ref string) (string, bool) {
	for _, img := range repo.Images {
		if img.Digest == ref || slices.Contains(img.Tags, ref) {
			return img.Digest, true
		}
	}
	return "", false
}

// refuseManifests makes pulls fail the way a deleted or never-pushed image does.
func refuseManifests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, kind, _ := splitPath(req.URL.Path); kind == "manifests" {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "Requested image not found")
			return
		}
		next.ServeHTTP(w, req)
	})
}

// splitPath splits /v2/<repo>/<kind>/<ref...> (kind: manifests, blobs, tags, referrers).
func splitPath(path string) (repo, kind, ref string) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", "", ""
	}
	for _, k := range []string{"manifests", "blobs", "tags", "referrers"} {
		if i := strings.LastIndex(rest, "/"+k+"/"); i > 0 {
			return rest[:i], k, rest[i+len(k)+2:]
		}
	}
	return "", "", ""
}

// registryError writes the distribution spec's error document, with ECR's wording.
func registryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}
