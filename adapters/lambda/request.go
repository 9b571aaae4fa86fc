package lambda

import (
	"encoding/base64"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// Attribute keys the carrier sets on every request.
const (
	AttrRequestID   = "lambda-request-id"
	AttrFunctionARN = "lambda-function-arn"
	AttrEvent       = "lambda-event"
)

// invocation is what the Runtime API says about one invoke, beside the
// payload.
type invocation struct {
	requestID   string
	functionARN string
}

func (inv invocation) attributes(s shape) map[string]string {
	a := make(map[string]string, 3)
	a[AttrEvent] = s.String()
	if inv.requestID != "" {
		a[AttrRequestID] = inv.requestID
	}
	if inv.functionARN != "" {
		a[AttrFunctionARN] = inv.functionARN
	}
	return a
}

// directRequest is the request for a direct invoke: the payload is a JSON
// prediction body posted to /predict.
func directRequest(payload []byte, inv invocation) *functions.Request {
	var body []byte
	if len(payload) > 0 {
		body = payload
	}
	return &functions.Request{
		ID:          inv.requestID,
		Method:      http.MethodPost,
		Path:        "/predict",
		Query:       url.Values{},
		Header:      http.Header{"Content-Type": {"application/json"}},
		ContentType: "application/json",
		Body:        body,
		Carrier:     functions.CarrierLambda,
		Attributes:  inv.attributes(shapeDirect),
	}
}

// request maps an HTTP event onto the request the HTTP carrier would build
// for the same HTTP request. maxBody bounds the decoded body; a larger one is
// a 413.
func (ev *event) request(s shape, inv invocation, maxBody int64) (*functions.Request, error) {
	req := &functions.Request{
		Carrier:    functions.CarrierLambda,
		Attributes: inv.attributes(s),
	}
	rc := ev.RequestContext
	switch s {
	case shapeURL, shapeV2:
		req.Method = rc.HTTP.Method
		req.Path = ev.v2Path()
		req.Query = parseQuery(ev.RawQueryString)
		if ev.RawQueryString == "" && len(ev.QueryStringParameters) > 0 {
			// Hand-written events may lack rawQueryString.
			for k, v := range ev.QueryStringParameters {
				req.Query[k] = append(req.Query[k], v)
			}
		}
		req.Header = headers(ev.Headers, nil)
		if len(ev.Cookies) > 0 && req.Header["Cookie"] == nil {
			req.Header["Cookie"] = []string{strings.Join(ev.Cookies, "; ")}
		}
	case shapeV1:
		req.Method = ev.HTTPMethod
		req.Path = ev.v1Path()
		req.Query = v1Query(ev.QueryStringParameters, ev.MultiValueQueryStringParameters)
		req.Header = headers(ev.Headers, ev.MultiValueHeaders)
	case shapeALB:
		req.Method = ev.HTTPMethod
		req.Path = unescapePath(ev.Path)
		req.Query = albQuery(ev.QueryStringParameters, ev.MultiValueQueryStringParameters)
		req.Header = headers(ev.Headers, ev.MultiValueHeaders)
	}
	req.ContentType = req.Header.Get("Content-Type")
	req.Model = req.Query.Get("model")
	switch {
	case req.Header.Get("X-Request-Id") != "":
		req.ID = req.Header.Get("X-Request-Id")
	case inv.requestID != "":
		req.ID = inv.requestID
	default:
		req.ID = rc.RequestID
	}
	body, err := ev.body(maxBody)
	if err != nil {
		return req, err
	}
	req.Body = body
	return req, nil
}

// v2Path is the path after the function's root for a payload 2.0 event.
func (ev *event) v2Path() string {
	if p, ok := ev.PathParameters["proxy"]; ok {
		return "/" + p
	}
	raw := ev.RawPath
	if raw == "" {
		raw = ev.RequestContext.HTTP.Path
	}
	// A named stage (not $default) prefixes rawPath with "/stage".
	if st := ev.RequestContext.Stage; st != "" && st != "$default" {
		if rest, ok := strings.CutPrefix(raw, "/"+st); ok && (rest == "" || rest[0] == '/') {
			raw = rest
		}
	}
	return unescapePath(raw)
}

// v1Path is the path after the function's root for a payload 1.0 event.
// API Gateway has decoded path and path parameters already.
func (ev *event) v1Path() string {
	if strings.HasSuffix(ev.Resource, "{proxy+}") {
		return "/" + ev.PathParameters["proxy"]
	}
	p := ev.Path
	// An HTTP API (whose 1.0 events say "version": "1.0") prefixes the
	// path with a named stage, as in format 2.0; a REST API's path never
	// has its stage.
	if st := ev.RequestContext.Stage; ev.Version == "1.0" && st != "" && st != "$default" {
		if rest, ok := strings.CutPrefix(p, "/"+st); ok && (rest == "" || rest[0] == '/') {
			p = rest
		}
	}
	if p == "" || p[0] != '/' {
		return "/" + p
	}
	return p
}

// unescapePath decodes a raw path the way net/http fills URL.Path; a path
// that does not decode is kept as it came.
func unescapePath(raw string) string {
	if raw == "" {
		return "/"
	}
	p := raw
	if strings.IndexByte(raw, '%') >= 0 {
		if u, err := url.PathUnescape(raw); err == nil {
			p = u
		}
	}
	if p[0] != '/' {
		p = "/" + p
	}
	return p
}

// parseQuery parses a raw query as net/http's URL.Query does: malformed
// pairs are dropped, the rest kept.
func parseQuery(raw string) url.Values {
	q, _ := url.ParseQuery(raw)
	return q
}

func v1Query(single map[string]string, multi map[string][]string) url.Values {
	if len(multi) > 0 {
		q := make(url.Values, len(multi))
		for k, vs := range multi {
			q[k] = append([]string(nil), vs...)
		}
		return q
	}
	q := make(url.Values, len(single))
	for k, v := range single {
		q[k] = []string{v}
	}
	return q
}

// albQuery rebuilds the raw query an ALB passes through undecoded and
// parses it, so the values are decoded exactly as over plain HTTP.
func albQuery(single map[string]string, multi map[string][]string) url.Values {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if len(multi) > 0 {
		for k, vs := range multi {
			for _, v := range vs {
				add(k, v)
			}
		}
	} else {
		for k, v := range single {
			add(k, v)
		}
	}
	return parseQuery(b.String())
}

// headers builds a canonical http.Header from an event's headers, preferring
// the multi-value ones when the event has them. Host is left out, as net/http
// moves it to Request.Host.
func headers(single map[string]string, multi map[string][]string) http.Header {
	if len(multi) > 0 {
		h := make(http.Header, len(multi)+1)
		for k, vs := range multi {
			ck := textproto.CanonicalMIMEHeaderKey(k)
			if ck == "Host" {
				continue
			}
			if _, dup := h[ck]; dup {
				return sortedHeaders(multi)
			}
			h[ck] = vs
		}
		return h
	}
	h := make(http.Header, len(single)+1)
	for k, v := range single {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if ck == "Host" {
			continue
		}
		if _, dup := h[ck]; dup {
			m := make(map[string][]string, len(single))
			for k, v := range single {
				m[k] = []string{v}
			}
			return sortedHeaders(m)
		}
		h[ck] = []string{v}
	}
	return h
}

// sortedHeaders merges keys that differ only in case (REST APIs keep the
// client's spelling) in byte order of the original keys, so the merged
// values do not depend on map order.
func sortedHeaders(m map[string][]string) http.Header {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := make(http.Header, len(m))
	for _, k := range keys {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if ck != "Host" {
			h[ck] = append(h[ck], m[k]...)
		}
	}
	return h
}

// body decodes the event body, refusing one over max before decoding it.
func (ev *event) body(max int64) ([]byte, error) {
	if ev.Body == "" {
		return nil, nil
	}
	if !ev.IsBase64Encoded {
		if int64(len(ev.Body)) > max {
			return nil, adapters.TooLarge(int64(len(ev.Body)), max)
		}
		return []byte(ev.Body), nil
	}
	enc := base64.StdEncoding
	// The 413 names the body's decoded size, as the HTTP carrier names
	// Content-Length: DecodedLen counts the padding as data, so it is
	// taken off.
	if size := int64(enc.DecodedLen(len(ev.Body)) - padding(ev.Body)); size > max {
		return nil, adapters.TooLarge(size, max)
	}
	b := make([]byte, enc.DecodedLen(len(ev.Body)))
	n, err := enc.Decode(b, []byte(ev.Body))
	if err != nil {
		return nil, &functions.Error{Status: http.StatusBadRequest,
			Message: "the event's body is marked isBase64Encoded but is not valid base64: " + err.Error(), Err: err}
	}
	if int64(n) > max {
		return nil, adapters.TooLarge(int64(n), max)
	}
	return b[:n], nil
}

// padding counts the "=" that end base64 text (at most two).
func padding(s string) int {
	n := 0
	for n < 2 && len(s) > n && s[len(s)-1-n] == '=' {
		n++
	}
	return n
}
