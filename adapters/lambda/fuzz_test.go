package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/cortexfn/cortex/functions"
)

// echoEngine answers every request with its body; enough to drive the
// mapping in fuzz targets.
type echoEngine struct{ max int64 }

func (echoEngine) Name() string     { return "fuzz" }
func (e echoEngine) MaxBody() int64 { return e.max }
func (echoEngine) Ready() bool      { return true }
func (echoEngine) Invoke(_ context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.Bytes(http.StatusOK, req.ContentType, req.Body), nil
}

func addEventSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"inputs": [1, 2]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"requestContext": {"elb": {}}, "httpMethod": ""}`))
	f.Add([]byte(`{"version": "2.0", "requestContext": {"http": {"method": "GET"}}, "rawPath": "%zz"}`))
}

// FuzzDetect feeds arbitrary payloads through detection and the whole
// handler: it never panics, a direct invoke carries the payload unchanged,
// and every HTTP event yields a result aws-lambda-go can send.
func FuzzDetect(f *testing.F) {
	addEventSeeds(f)
	h := newHandler(echoEngine{max: 1 << 20}, &options{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, s := decode(payload)
		if (ev == nil) != (s == shapeDirect) {
			t.Fatalf("shape %s with event %v", s, ev)
		}
		if s != shapeDirect && ev.HTTPMethod == "" && ev.RequestContext.HTTP.Method == "" {
			t.Fatalf("%s event without a method", s)
		}
		out, err := h.invoke(context.Background(), payload)
		if err != nil {
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) || ie.Type == "" {
				t.Fatalf("error %v is not a Lambda function error", err)
			}
			return
		}
		b, err := io.ReadAll(out)
		if err != nil {
			t.Fatal(err)
		}
		if s == shapeDirect && json.Valid(payload) && len(payload) > 0 && !bytes.Equal(b, payload) {
			t.Fatalf("direct invoke: got %q back, want the payload %q", b, payload)
		}
		if s != shapeDirect && !json.Valid(b) {
			t.Fatalf("%s result is not JSON: %q", s, b)
		}
	})
}

// FuzzMapV2 builds function URL events from fuzzed parts and checks the
// request against what net/http would make of the same parts.
func FuzzMapV2(f *testing.F) {
	f.Add("POST", "/my/path", "a=1&a=2&b=%20x+y", "x-tag", "v1,v2", "c=1", []byte("body"), false)
	f.Add("GET", "/a%2Fb/%zz", "bad=%zz;x", "Host", "h", "", []byte{0, 0xff}, true)
	f.Fuzz(func(t *testing.T, method, rawPath, rawQuery, hk, hv, cookie string, body []byte, b64 bool) {
		// Events are JSON: their strings are valid UTF-8.
		method, rawPath, rawQuery, hk, hv, cookie = viaJSON(method), viaJSON(rawPath), viaJSON(rawQuery), viaJSON(hk), viaJSON(hv), viaJSON(cookie)
		if method == "" {
			method = "GET"
		}
		ev := events.LambdaFunctionURLRequest{
			Version: "2.0", RawPath: rawPath, RawQueryString: rawQuery,
			Headers: map[string]string{hk: hv},
			RequestContext: events.LambdaFunctionURLRequestContext{
				DomainName: "x.lambda-url.us-east-1.on.aws", RequestID: "rid",
				HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: method},
			},
			IsBase64Encoded: b64,
		}
		if cookie != "" {
			ev.Cookies = []string{cookie}
		}
		if b64 {
			ev.Body = base64.StdEncoding.EncodeToString(body)
		} else {
			ev.Body = strings.ToValidUTF8(string(body), "")
			body = []byte(ev.Body)
		}
		payload, _ := json.Marshal(ev)
		req := mapOK(t, payload, shapeURL)
		if req.Method != method {
			t.Errorf("Method: got %q, want %q", req.Method, method)
		}
		if want, _ := url.ParseQuery(viaJSON(rawQuery)); !equalValues(req.Query, want) {
			t.Errorf("Query: got %v, want %v", req.Query, want)
		}
		checkCommon(t, req, body)
		ck := textproto.CanonicalMIMEHeaderKey(viaJSON(hk))
		if ck != "Host" && ck != "" && ck != "Cookie" && (len(req.Header[ck]) != 1 || req.Header[ck][0] != viaJSON(hv)) {
			t.Errorf("Header[%q]: got %q, want [%q]", ck, req.Header[ck], hv)
		}
		if cookie != "" && ck != "Cookie" && req.Header.Get("Cookie") != viaJSON(cookie) {
			t.Errorf("Cookie: got %q, want %q", req.Header.Get("Cookie"), cookie)
		}
	})
}

// FuzzMapV1 checks REST events with multi-value headers and query values.
func FuzzMapV1(f *testing.F) {
	f.Add("POST", "/hello", "k", "v 1", "v&2", "X-Tag", "a", "b", []byte("body"), false)
	f.Fuzz(func(t *testing.T, method, path, qk, qv1, qv2, hk, hv1, hv2 string, body []byte, b64 bool) {
		method, path, qk, qv1, qv2, hk = viaJSON(method), viaJSON(path), viaJSON(qk), viaJSON(qv1), viaJSON(qv2), viaJSON(hk)
		if method == "" {
			method = "POST"
		}
		ev := events.APIGatewayProxyRequest{
			Resource: "/x", Path: path, HTTPMethod: method,
			MultiValueHeaders:               map[string][]string{hk: {hv1, hv2}},
			MultiValueQueryStringParameters: map[string][]string{qk: {qv1, qv2}},
			RequestContext:                  events.APIGatewayProxyRequestContext{RequestID: "rid", HTTPMethod: method},
			IsBase64Encoded:                 b64,
		}
		if b64 {
			ev.Body = base64.StdEncoding.EncodeToString(body)
		} else {
			ev.Body = strings.ToValidUTF8(string(body), "")
			body = []byte(ev.Body)
		}
		payload, _ := json.Marshal(ev)
		req := mapOK(t, payload, shapeV1)
		want := url.Values{viaJSON(qk): {viaJSON(qv1), viaJSON(qv2)}}
		if !equalValues(req.Query, want) {
			t.Errorf("Query: got %q, want %q", req.Query, want)
		}
		if ck := textproto.CanonicalMIMEHeaderKey(viaJSON(hk)); ck != "Host" && len(req.Header[ck]) != 2 {
			t.Errorf("Header[%q]: got %q, want two values", ck, req.Header[ck])
		}
		checkCommon(t, req, body)
	})
}

// FuzzMapALB checks that ALB query values, which AWS leaves encoded, are
// decoded as net/http decodes the same raw query.
func FuzzMapALB(f *testing.F) {
	f.Add("GET", "/p%20q", "a%20b", "c+d%2B", "X-H", "v", []byte("x"), true, false)
	f.Fuzz(func(t *testing.T, method, path, qk, qv, hk, hv string, body []byte, multi, b64 bool) {
		method, path, qk, qv = viaJSON(method), viaJSON(path), viaJSON(qk), viaJSON(qv)
		if method == "" {
			method = "GET"
		}
		ev := events.ALBTargetGroupRequest{HTTPMethod: method, Path: path, IsBase64Encoded: b64}
		ev.RequestContext.ELB.TargetGroupArn = "arn"
		if multi {
			ev.MultiValueQueryStringParameters = map[string][]string{qk: {qv}}
			ev.MultiValueHeaders = map[string][]string{hk: {hv}}
		} else {
			ev.QueryStringParameters = map[string]string{qk: qv}
			ev.Headers = map[string]string{hk: hv}
		}
		if b64 {
			ev.Body = base64.StdEncoding.EncodeToString(body)
		} else {
			ev.Body = strings.ToValidUTF8(string(body), "")
			body = []byte(ev.Body)
		}
		payload, _ := json.Marshal(ev)
		req := mapOK(t, payload, shapeALB)
		raw := viaJSON(qk) + "=" + viaJSON(qv)
		if want, _ := url.ParseQuery(raw); !equalValues(req.Query, want) {
			t.Errorf("Query: got %q, want %q (net/http on %q)", req.Query, want, raw)
		}
		checkCommon(t, req, body)
	})
}

// FuzzResponse encodes fuzzed responses in every shape and decodes them
// with aws-lambda-go's types: status, cookies and body survive.
func FuzzResponse(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"a":1}`), "a=1")
	f.Add(404, "image/png", []byte{0x89, 0, 0xff}, "")
	f.Add(0, "", []byte("plain"), "x")
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte, cookie string) {
		if status < 100 || status > 599 {
			status = 200
		}
		for _, s := range []shape{shapeURL, shapeV2, shapeV1, shapeALB} {
			resp := functions.Bytes(status, ct, append([]byte(nil), body...))
			if cookie != "" {
				resp.Header.Add("Set-Cookie", cookie)
			}
			ev := &event{MultiValueHeaders: map[string][]string{"a": {"b"}}}
			out, err := encodeHTTP(s, ev, resp, "rid", false)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(out)
			var r struct {
				StatusCode        int                 `json:"statusCode"`
				Body              string              `json:"body"`
				IsBase64Encoded   bool                `json:"isBase64Encoded"`
				Cookies           []string            `json:"cookies"`
				MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			if r.StatusCode != resp.StatusCode() {
				t.Errorf("%s status: got %d, want %d", s, r.StatusCode, resp.StatusCode())
			}
			got := []byte(r.Body)
			if r.IsBase64Encoded {
				got, _ = base64.StdEncoding.DecodeString(r.Body)
			}
			if !bytes.Equal(got, body) {
				t.Errorf("%s body: got %q, want %q", s, got, body)
			}
			if cookie != "" {
				cs := r.Cookies
				if s == shapeV1 || s == shapeALB {
					cs = r.MultiValueHeaders["Set-Cookie"]
				}
				if len(cs) != 1 || cs[0] != viaJSON(cookie) {
					t.Errorf("%s cookies: got %q, want [%q]", s, cs, cookie)
				}
			}
		}
	})
}

func mapOK(t *testing.T, payload []byte, want shape) *functions.Request {
	t.Helper()
	ev, s := decode(payload)
	if s != want {
		t.Fatalf("shape: got %s, want %s for %s", s, want, payload)
	}
	req, err := ev.request(s, invocation{requestID: "rid"}, 1<<20)
	if err != nil {
		t.Fatalf("mapping: %v", err)
	}
	if req.Carrier != functions.CarrierLambda || req.ID == "" {
		t.Fatalf("Carrier %q, ID %q", req.Carrier, req.ID)
	}
	return req
}

func checkCommon(t *testing.T, req *functions.Request, body []byte) {
	t.Helper()
	if !strings.HasPrefix(req.Path, "/") {
		t.Errorf("Path %q does not start with /", req.Path)
	}
	for k := range req.Header {
		if k != textproto.CanonicalMIMEHeaderKey(k) || k == "Host" {
			t.Errorf("header key %q is not canonical or is Host", k)
		}
	}
	if !bytes.Equal(req.Body, body) || (len(body) == 0) != (req.Body == nil) {
		t.Errorf("Body: got %q, want %q", req.Body, body)
	}
	if req.ContentType != req.Header.Get("Content-Type") {
		t.Errorf("ContentType %q differs from the header %q", req.ContentType, req.Header.Get("Content-Type"))
	}
}

// viaJSON is s as it arrives through a JSON string: invalid UTF-8 becomes
// U+FFFD, byte by byte.
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := b[k]
		if len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}
