package awsdouble

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

type ec2Handler func(d *Double, f form) (ec2Answer, *apiError)

var ec2Handlers = map[string]ec2Handler{
	"DescribeVpcs":                  (*Double).describeVpcs,
	"DescribeSubnets":               (*Double).describeSubnets,
	"DescribeImages":                (*Double).describeImages,
	"CreateSecurityGroup":           (*Double).createSecurityGroup,
	"AuthorizeSecurityGroupIngress": (*Double).authorizeIngress,
	"DescribeSecurityGroups":        (*Double).describeSecurityGroups,
	"DeleteSecurityGroup":           (*Double).deleteSecurityGroup,
	"ImportKeyPair":                 (*Double).importKeyPair,
	"DescribeKeyPairs":              (*Double).describeKeyPairs,
	"DeleteKeyPair":                 (*Double).deleteKeyPair,
	"RunInstances":                  (*Double).runInstances,
	"DescribeInstances":             (*Double).describeInstances,
	"TerminateInstances":            (*Double).terminateInstances,
	"DescribeVolumes":               (*Double).describeVolumes,
	"DeleteVolume":                  (*Double).deleteVolume,
}

// ec2Answer is a response document; every one embeds Envelope.
type ec2Answer interface{ setEnvelope(requestID string) }

// Envelope carries what every EC2 answer shares besides its root element <OpResponse xmlns=...>.
// It is exported only because encoding/xml reads embedded fields through reflection.
type Envelope struct {
	RequestID string `xml:"requestId"`
}

func (e *Envelope) setEnvelope(requestID string) { e.RequestID = requestID }

// ReturnAnswer is EC2's <return>true</return> answer.
type ReturnAnswer struct {
	Envelope
	Return bool `xml:"return"`
}

func (d *Double) serveEC2(w http.ResponseWriter, r *http.Request) {
	reqID := d.requestID()
	if err := r.ParseForm(); err != nil {
		writeEC2Error(w, reqID, errorf("MalformedQueryString", "%v", err))
		return
	}
	action := r.PostForm.Get("Action")
	h, ok := ec2Handlers[action]
	if !ok {
		writeEC2Error(w, reqID, errorf("InvalidAction", "The action %s is not valid for this web service.", action))
		return
	}
	op := "ec2:" + action
	if !d.hang(op, r) {
		return
	}
	if e := d.admit(op); e != nil {
		writeEC2Error(w, reqID, e)
		return
	}
	if v := r.PostForm.Get("Version"); v != "2016-11-15" {
		writeEC2Error(w, reqID, errorf("InvalidParameterValue", "unsupported API version %q", v))
		return
	}
	answer, e := h(d, form{v: r.PostForm})
	d.after(op, r)
	if e != nil {
		writeEC2Error(w, reqID, e)
		return
	}
	answer.setEnvelope(reqID)
	var body bytes.Buffer
	root := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ec2Namespace}}}
	if err := xml.NewEncoder(&body).EncodeElement(answer, root); err != nil {
		writeEC2Error(w, reqID, &apiError{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write(append([]byte(xml.Header), body.Bytes()...))
}

// form reads EC2 query parameters: lists are Name.1, Name.2; structures are Name.Field.
type form struct {
	v      map[string][]string
	prefix string
}

func (f form) get(key string) string {
	if vs := f.v[f.prefix+key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (f form) has(key string) bool { _, ok := f.v[f.prefix+key]; return ok }

func (f form) int(key string, fallback int) int {
	n, err := strconv.Atoi(f.get(key))
	if err != nil {
		return fallback
	}
	return n
}

func (f form) bool(key string) bool { return f.get(key) == "true" }

// list returns Key.1, Key.2, ... until the first gap.
func (f form) list(key string) []string {
	var out []string
	for i := 1; ; i++ {
		vs, ok := f.v[f.prefix+key+"."+strconv.Itoa(i)]
		if !ok || len(vs) == 0 {
			return out
		}
		out = append(out, vs[0])
	}
}

// items returns the structures Key.1.*, Key.2.*, ... until the first gap.
func (f form) items(key string) []form {
	var out []form
	for i := 1; ; i++ {
		p := f.prefix + key + "." + strconv.Itoa(i) + "."
		found := false
		for k := range f.v {
			if strings.HasPrefix(k, p) {
				found = true
				break
			}
		}
		if !found {
			return out
		}
		out = append(out, form{v: f.v, prefix: p})
	}
}

func (f form) sub(key string) form { return form{v: f.v, prefix: f.prefix + key + "."} }

// tagSpecs returns the tags requested for each resource type.
func (f form) tagSpecs(allowed ...string) (map[string]map[string]string, *apiError) {
	out := map[string]map[string]string{}
	for _, spec := range f.items("TagSpecification") {
		typ := spec.get("ResourceType")
		if !slices.Contains(allowed, typ) {
			return nil, errorf("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", typ)
		}
		tags := map[string]string{}
		for _, t := range spec.items("Tag") {
			k := t.get("Key")
			if k == "" || strings.HasPrefix(strings.ToLower(k), "aws:") {
				return nil, errorf("InvalidParameterValue", "tag key %q is not allowed", k)
			}
			tags[k] = t.get("Value")
		}
		out[typ] = tags
	}
	return out, nil
}

type filter struct {
	name   string
	values []string
}

func (f form) filters() []filter {
	var out []filter
	for _, it := range f.items("Filter") {
		out = append(out, filter{name: it.get("Name"), values: it.list("Value")})
	}
	return out
}

// attrs answers a filter name with the resource's values for it; ok is false for names the
// resource type does not support (AWS refuses those).
type attrs func(name string) (values []string, ok bool)

func tagAttrs(tags map[string]string, name string) ([]string, bool) {
	switch {
	case strings.HasPrefix(name, "tag:"):
		if v, ok := tags[strings.TrimPrefix(name, "tag:")]; ok {
			return []string{v}, true
		}
		return nil, true
	case name == "tag-key":
		var keys []string
		for k := range tags {
			keys = append(keys, k)
		}
		return keys, true
	case name == "tag-value":
		var vals []string
		for _, v := range tags {
			vals = append(vals, v)
		}
		return vals, true
	}
	return nil, false
}

// filtersFor returns the request's filters after checking each name against a resource type's
// attributes: AWS refuses unknown filter names rather than matching nothing.
func (f form) filtersFor(a attrs) ([]filter, *apiError) {
	filters := f.filters()
	for _, fl := range filters {
		if _, ok := a(fl.name); !ok {
			return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid", fl.name)
		}
	}
	return filters, nil
}

// match applies filters checked by filtersFor: names AND together, a name's values OR together,
// and * and ? are wildcards.
func match(filters []filter, a attrs) bool {
	for _, f := range filters {
		have, _ := a(f.name)
		hit := false
		for _, want := range f.values {
			for _, h := range have {
				hit = hit || glob(want, h)
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func glob(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if glob(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && glob(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && glob(pattern[1:], s[1:])
	}
}

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func xTags(tags map[string]string) []xTag {
	var out []xTag
	for k, v := range tags {
		out = append(out, xTag{k, v})
	}
	slices.SortFunc(out, func(a, b xTag) int { return strings.Compare(a.Key, b.Key) })
	return out
}
