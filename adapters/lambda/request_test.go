package lambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
)

const (
	testRequestID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
	testARN       = "arn:aws:lambda:us-east-1:123456789012:function:fn"
)

// lambdaContext is the context aws-lambda-go gives a handler, as the
// Runtime API's headers fill it.
func lambdaContext(t testing.TB) context.Context {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
		AwsRequestID: testRequestID, InvokedFunctionArn: testARN})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// posted is a captured event sent as a POST: only a POST reaches the
// predictor (other methods are answered as over HTTP, see
// TestRoutesMatchHTTP), and the tests that use it look at what the
// predictor sees and answers.
func posted(t testing.TB, name string) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readEvent(t, name)))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		t.Fatal(err)
	}
	if _, ok := ev["httpMethod"]; ok {
		ev["httpMethod"] = "POST"
	}
	if rc, ok := ev["requestContext"].(map[string]any); ok {
		if _, ok := rc["httpMethod"]; ok {
			rc["httpMethod"] = "POST"
		}
		if h, ok := rc["http"].(map[string]any); ok {
			h["method"] = "POST"
		}
	}
	return marshal(t, ev)
}

func attrs(event string) map[string]string {
	return map[string]string{
		lambda.AttrEvent:       event,
		lambda.AttrRequestID:   testRequestID,
		lambda.AttrFunctionARN: testARN,
	}
}

// TestRequestMapping runs real captured events (and our own, for what they
// lack) through the carrier and checks every field of the request the
// predictor sees. Each is sent as a POST (see posted): the captured GET
// events are the routes' tests' business.
func TestRequestMapping(t *testing.T) {
	tests := []struct {
		name  string
		event string
		want  functions.Request
	}{{
		name:  "REST API v1 with proxy route",
		event: "apigw-request.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/hello/world",
			Query: url.Values{"name": {"me"}},
			Header: http.Header{
				"Accept":                       {"*/*"},
				"Accept-Encoding":              {"gzip, deflate"},
				"Cache-Control":                {"no-cache"},
				"Cloudfront-Forwarded-Proto":   {"https"},
				"Cloudfront-Is-Desktop-Viewer": {"true"},
				"Cloudfront-Is-Mobile-Viewer":  {"false"},
				"Cloudfront-Is-Smarttv-Viewer": {"false"},
				"Cloudfront-Is-Tablet-Viewer":  {"false"},
				"Cloudfront-Viewer-Country":    {"US"},
				"Content-Type":                 {"application/json"},
				"Headername":                   {"headerValue"},
				"Postman-Token":                {"9f583ef0-ed83-4a38-aef3-eb9ce3f7a57f"},
				"User-Agent":                   {"PostmanRuntime/2.4.5"},
				"Via":                          {"1.1 d98420743a69852491bbdea73f7680bd.cloudfront.net (CloudFront)"},
				"X-Amz-Cf-Id":                  {"pn-PWIJc6thYnZm5P0NMgOUglL1DYtl0gdeJky8tqsg8iS_sgsKD1A=="},
				"X-Forwarded-For":              {"54.240.196.186, 54.182.214.83"},
				"X-Forwarded-Port":             {"443"},
				"X-Forwarded-Proto":            {"https"},
			},
			ContentType: "application/json",
			Body:        []byte("{\r\n\t\"a\": 1\r\n}"),
			Attributes:  attrs("apigw-v1"),
		},
	}, {
		name:  "HTTP API v2 without authorizer",
		event: "apigw-v2-request-no-authorizer.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/", Query: url.Values{},
			Header: http.Header{
				"Accept":            {"*/*"},
				"Content-Length":    {"0"},
				"User-Agent":        {"curl/7.58.0"},
				"X-Amzn-Trace-Id":   {"Root=1-5e9f0c65-1de4d666d4dd26aced652b6c"},
				"X-Forwarded-For":   {"1.2.3.4"},
				"X-Forwarded-Port":  {"443"},
				"X-Forwarded-Proto": {"https"},
			},
			Attributes: attrs("apigw-v2"),
		},
	}, {
		name:  "HTTP API v2 with IAM, cookies and a proxy parameter",
		event: "apigw-v2-request-iam.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/hello/world",
			Query: url.Values{"parameter1": {"value1", "value2"}, "parameter2": {"value"}},
			Header: http.Header{
				"Header1": {"value1"},
				"Header2": {"value2"},
				"Cookie":  {"cookie1; cookie2"},
			},
			Body:       []byte("{\r\n\t\"a\": 1\r\n}"),
			Attributes: attrs("apigw-v2"),
		},
	}, {
		name:  "function URL (events/testdata)",
		event: "lambda-urls-request.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/my/path",
			Query: url.Values{"parameter1": {"value1", "value2"}, "parameter2": {"value"}},
			Header: http.Header{
				"Header1": {"value1"},
				"Header2": {"value1,value2"},
				"Cookie":  {"cookie1; cookie2"},
			},
			Body:       []byte("Hello from client!"),
			Attributes: attrs("function-url"),
		},
	}, {
		name:  "function URL with headers, cookies and a text body",
		event: "function-url-request-with-headers-and-cookies-and-text-body.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/hello",
			Query: url.Values{"hello": {"world"}, "foo": {"bar"}},
			Header: urlHeaders("Root=1-643eccfa-2c6028925c2b249524664087", "20230418T170146Z",
				"5f8f04f6a3a892aaabbddb6cf273894493773960d4a325b105fee46eef4304f1", http.Header{
					"Accept":         {"*/*"},
					"Content-Length": {"18"},
					"Content-Type":   {"application/json"},
					"Cookie":         {"foo=bar; hello=hello"},
					"Header1":        {"h1"},
					"Header2":        {"h1,h2"},
					"Header3":        {"h3"},
				}),
			ContentType: "application/json",
			Body:        []byte(`{"hello": "world"}`),
			Attributes:  attrs("function-url"),
		},
	}, {
		name:  "function URL with a base64 body",
		event: "function-url-domain-only-request-with-base64-encoded-body.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/", Query: url.Values{},
			Header: urlHeaders("Root=1-643eccfb-7fdecb844a12b4b45645132d", "20230418T170147Z",
				"0ab2082273499eaa495f2196e32d8c794745e58a20a0c93182c59d2165432839", http.Header{
					"Accept":         {"*/*"},
					"Content-Length": {"6"},
					"Content-Type":   {"idk"},
				}),
			ContentType: "idk",
			Body:        []byte("<idk/>"),
			Attributes:  attrs("function-url"),
		},
	}, {
		name:  "function URL GET",
		event: "function-url-domain-only-get-request.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/", Query: url.Values{},
			Header: urlHeaders("Root=1-643eccfb-4c9be61972302fa41111a443", "20230418T170147Z",
				"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", http.Header{
					"Accept":       {"application/xml"},
					"Content-Type": {"application/json"},
				}),
			ContentType: "application/json",
			Attributes:  attrs("function-url"),
		},
	}, {
		name:  "ALB, single-value headers",
		event: "alb-lambda-target-request-headers-only.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/",
			Query: url.Values{"key": {"hello"}},
			Header: http.Header{
				"Accept":            {"*/*"},
				"Connection":        {"keep-alive"},
				"User-Agent":        {"curl/7.54.0"},
				"X-Amzn-Trace-Id":   {"Root=1-5c34e93e-4dea0086f9763ac0667b115a"},
				"X-Forwarded-For":   {"25.12.198.67"},
				"X-Forwarded-Port":  {"80"},
				"X-Forwarded-Proto": {"http"},
				"X-Imforwards":      {"20"},
				"X-Myheader":        {"123"},
			},
			Attributes: attrs("alb"),
		},
	}, {
		name:  "ALB, multi-value headers",
		event: "alb-lambda-target-request-multivalue-headers.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/",
			Query: url.Values{"key": {"hello"}},
			Header: http.Header{
				"Accept":            {"*/*"},
				"Connection":        {"keep-alive"},
				"User-Agent":        {"curl/7.54.0"},
				"X-Amzn-Trace-Id":   {"Root=1-5c34e7d4-00ca239424b68028d4c56d68"},
				"X-Forwarded-For":   {"72.21.198.67"},
				"X-Forwarded-Port":  {"80"},
				"X-Forwarded-Proto": {"http"},
				"X-Imforwards":      {"20"},
				"X-Myheader":        {"123"},
			},
			Attributes: attrs("alb"),
		},
	}, {
		name:  "function URL with encoded path and query, cookies only in cookies[], binary body",
		event: "cortex-function-url-encoded.json",
		want: functions.Request{
			ID: "req-123", Method: "POST", Path: "/v2/models/iris v1/infer",
			// bad=%zz is dropped, as net/http's URL.Query drops it.
			Query: url.Values{"q": {"a b", "c+d"}, "x": {"1 2"}, "model": {"iris"}, "empty": {""}},
			Header: http.Header{
				"Content-Type":    {"application/octet-stream"},
				"X-Request-Id":    {"req-123"},
				"Accept":          {"application/json,text/plain"},
				"X-Forwarded-For": {"1.1.1.1,2.2.2.2"},
				"Cookie":          {"session=abc; theme=dark"},
			},
			ContentType: "application/octet-stream",
			Body:        []byte{0, 1, 2, 0xff, 0, 0x7f, 0x80},
			Model:       "iris v1", // the path names the model; ?model= only when it does not
			Protocol:    functions.ProtocolOIP,
			Attributes:  attrs("function-url"),
		},
	}, {
		name:  "HTTP API v2 on a named stage",
		event: "cortex-apigw-v2-stage.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/predict",
			Query:       url.Values{"threshold": {"0.5"}},
			Header:      http.Header{"Content-Type": {"application/json"}, "Content-Length": {"9"}},
			ContentType: "application/json",
			Body:        []byte(`{"x": [1]}`),
			Attributes:  attrs("apigw-v2"),
		},
	}, {
		name:  "HTTP API payload 1.0 on a named stage",
		event: "cortex-apigw-http-v1-stage.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/predict",
			Query:       url.Values{"threshold": {"0.5"}},
			Header:      http.Header{"Content-Type": {"application/json"}, "Content-Length": {"10"}},
			ContentType: "application/json",
			Body:        []byte(`{"x": [1]}`),
			Attributes:  attrs("apigw-v1"),
		},
	}, {
		name:  "REST API v1 with repeated headers and query values",
		event: "cortex-apigw-v1-multivalue.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/predict",
			Query: url.Values{"k": {"v1", "v 2"}, "sym": {"&="}},
			Header: http.Header{
				"Content-Type": {"text/plain"},
				"X-Tag":        {"a", "b", "c"},
				"Cookie":       {"a=1; b=2"},
			},
			ContentType: "text/plain",
			Body:        []byte("héllo wörld"),
			Attributes:  attrs("apigw-v1"),
		},
	}, {
		name:  "ALB with undecoded query values, repeated headers and a binary body",
		event: "cortex-alb-encoded-multivalue.json",
		want: functions.Request{
			ID: testRequestID, Method: "POST", Path: "/predict",
			Query:       url.Values{"q": {"a b", "c d"}, "enc&key": {"x=y"}},
			Header:      http.Header{"Content-Type": {"image/png"}, "X-Tag": {"a", "b"}},
			ContentType: "image/png",
			Body:        []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'},
			Attributes:  attrs("alb"),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
				return functions.Text(http.StatusOK, "ok"), nil
			})
			h, err := lambda.Handler(e)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h(lambdaContext(t), posted(t, tt.event)); err != nil {
				t.Fatalf("handler: %v", err)
			}
			got := e.lastRequest()
			if got == nil {
				t.Fatal("the predictor was not called")
			}
			tt.want.Carrier = functions.CarrierLambda
			compareRequests(t, got, &tt.want)
		})
	}
}

// urlHeaders is the set of headers every captured function URL event
// carries, plus extra.
func urlHeaders(trace, date, sha string, extra http.Header) http.Header {
	h := http.Header{
		"Accept-Encoding":         {"gzip, deflate"},
		"User-Agent":              {"python-requests/2.28.2"},
		"X-Amz-Content-Sha256":    {sha},
		"X-Amz-Date":              {date},
		"X-Amz-Security-Token":    {"security-token"},
		"X-Amzn-Tls-Cipher-Suite": {"ECDHE-RSA-AES128-GCM-SHA256"},
		"X-Amzn-Tls-Version":      {"TLSv1.2"},
		"X-Amzn-Trace-Id":         {trace},
		"X-Forwarded-For":         {"127.0.0.1"},
		"X-Forwarded-Port":        {"443"},
		"X-Forwarded-Proto":       {"https"},
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func compareRequests(t *testing.T, got, want *functions.Request) {
	t.Helper()
	check := func(field string, g, w any) {
		t.Helper()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %#v\nwant %#v", field, g, w)
		}
	}
	check("ID", got.ID, want.ID)
	check("Method", got.Method, want.Method)
	check("Path", got.Path, want.Path)
	check("Query", got.Query, want.Query)
	for k := range got.Header {
		if _, ok := want.Header[k]; !ok {
			t.Errorf("Header: unexpected %q: %q", k, got.Header[k])
		}
	}
	for k, v := range want.Header {
		check("Header["+k+"]", got.Header[k], v)
	}
	check("ContentType", got.ContentType, want.ContentType)
	if !bytes.Equal(got.Body, want.Body) || (got.Body == nil) != (want.Body == nil) {
		t.Errorf("Body:\n got %q\nwant %q", got.Body, want.Body)
	}
	check("Carrier", got.Carrier, want.Carrier)
	check("Protocol", got.Protocol, want.Protocol)
	check("Model", got.Model, want.Model)
	check("Version", got.Version, want.Version)
	check("Attributes", got.Attributes, want.Attributes)
}

// TestDirectInvoke checks that a payload that is no HTTP event is the
// prediction body, posted to /predict.
func TestDirectInvoke(t *testing.T) {
	for _, payload := range []string{`{"inputs": [[5.1, 3.5, 1.4, 0.2]]}`, `[1, 2, 3]`, `"text"`, `42`, `{"headers": 5}`, `{"httpMethod": "GET"}`} {
		t.Run(payload, func(t *testing.T) {
			e := newTestEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
				return functions.Bytes(http.StatusOK, "application/json", req.Body), nil
			})
			h, _ := lambda.Handler(e)
			out, err := h(lambdaContext(t), json.RawMessage(payload))
			if err != nil {
				t.Fatal(err)
			}
			compareRequests(t, e.lastRequest(), &functions.Request{
				ID: testRequestID, Method: "POST", Path: "/predict", Query: url.Values{},
				Header:      http.Header{"Content-Type": {"application/json"}},
				ContentType: "application/json", Body: []byte(payload), Carrier: functions.CarrierLambda,
				Attributes: attrs("direct"),
			})
			if got := readAll(t, out); got != payload {
				t.Errorf("result: got %s, want %s", got, payload)
			}
		})
	}
}

// TestInvokeCopiesThePayload checks that the request keeps its own copy
// of a payload aws-lambda-go hands over: aws-lambda-go reuses that buffer
// for the next invocation while a prediction may still be running.
func TestInvokeCopiesThePayload(t *testing.T) {
	e := newTestEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		return functions.Bytes(http.StatusOK, "application/json", req.Body), nil
	})
	h, _ := lambda.Handler(e)
	in := []byte(`{"inputs": [1, 2]}`)
	out, err := h.Invoke(lambdaContext(t), in)
	if err != nil || string(out) != `{"inputs": [1, 2]}` {
		t.Fatalf("got %s %v", out, err)
	}
	copy(in, "XXXXXXXXXXXXXXXXXX")
	if got := string(e.lastRequest().Body); got != `{"inputs": [1, 2]}` {
		t.Errorf("the request's body changed with the invocation's buffer: %q", got)
	}
}

// TestCapturedEventsMatchModule checks that the copies in testdata/events
// are still the module's files, when the module cache has them.
func TestCapturedEventsMatchModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-lambda-go").Output()
	dir := string(bytes.TrimSpace(out))
	if err != nil || dir == "" {
		t.Skipf("aws-lambda-go is not in the module cache: %v", err)
	}
	files := map[string]string{
		"apigw-request.json":                                               "events/testdata",
		"apigw-v2-request-no-authorizer.json":                              "events/testdata",
		"apigw-v2-request-iam.json":                                        "events/testdata",
		"lambda-urls-request.json":                                         "events/testdata",
		"alb-lambda-target-request-headers-only.json":                      "events/testdata",
		"alb-lambda-target-request-multivalue-headers.json":                "events/testdata",
		"function-url-request-with-headers-and-cookies-and-text-body.json": "lambdaurl/testdata",
		"function-url-domain-only-request-with-base64-encoded-body.json":   "lambdaurl/testdata",
		"function-url-domain-only-get-request.json":                        "lambdaurl/testdata",
	}
	for name, from := range files {
		want, err := os.ReadFile(filepath.Join(dir, from, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := readEvent(t, name); !bytes.Equal(got, want) {
			t.Errorf("testdata/events/%s differs from %s/%s in the module", name, from, name)
		}
	}
}
