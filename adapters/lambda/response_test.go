package lambda_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
)

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// contentTyper is what aws-lambda-go reads the result's Content-Type from.
type contentTyper interface{ ContentType() string }

func answer(resp *functions.Response) *testEngine {
	return newTestEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		return resp, nil
	})
}

func withCookies(ct string, body []byte) *functions.Response {
	r := functions.Bytes(http.StatusCreated, ct, body)
	r.Header.Add("Set-Cookie", "a=1; Path=/")
	r.Header.Add("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT")
	r.Header.Add("X-Multi", "x")
	r.Header.Add("X-Multi", "y")
	return r
}

// TestResponseShapes checks that a response goes back in the shape of the
// event that asked, decoding it with aws-lambda-go's own types.
func TestResponseShapes(t *testing.T) {
	text := []byte(`{"class": "setosa"}`)
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff}
	tests := []struct {
		name, event, ct string
		body            []byte
		wantB64         bool
	}{
		{"function URL text", "lambda-urls-request.json", "application/json", text, false},
		{"function URL binary", "function-url-domain-only-request-with-base64-encoded-body.json", "image/png", binary, true},
		{"HTTP API v2 text", "apigw-v2-request-iam.json", "text/csv", text, false},
		{"HTTP API v2 invalid UTF-8 text", "apigw-v2-request-iam.json", "text/plain", binary, true},
		{"REST v1 text", "apigw-request.json", "application/vnd.api+json", text, false},
		{"REST v1 binary", "apigw-request.json", "application/octet-stream", binary, true},
		{"ALB single text", "alb-lambda-target-request-headers-only.json", "text/plain; charset=utf-8", text, false},
		{"ALB multi binary", "alb-lambda-target-request-multivalue-headers.json", "application/x-protobuf", binary, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := lambda.Handler(answer(withCookies(tt.ct, tt.body)))
			out, err := h(lambdaContext(t), posted(t, tt.event))
			if err != nil {
				t.Fatal(err)
			}
			if ct := out.(contentTyper).ContentType(); ct != "application/json" {
				t.Errorf("result Content-Type: got %q, want application/json", ct)
			}
			raw := []byte(readAll(t, out))
			var status int
			var body string
			var b64 bool
			var header http.Header
			var cookies []string
			switch {
			case strings.HasPrefix(tt.event, "alb"):
				var r events.ALBTargetGroupResponse
				mustUnmarshal(t, raw, &r)
				status, body, b64 = r.StatusCode, r.Body, r.IsBase64Encoded
				if r.StatusDescription != "201 Created" {
					t.Errorf("statusDescription: got %q, want %q", r.StatusDescription, "201 Created")
				}
				if strings.Contains(tt.event, "multivalue") {
					if r.Headers != nil {
						t.Errorf("headers: got %v, want none beside multiValueHeaders", r.Headers)
					}
					header = http.Header(r.MultiValueHeaders)
					cookies = header["Set-Cookie"]
				} else {
					if r.MultiValueHeaders != nil {
						t.Errorf("multiValueHeaders: got %v, want none: the request had none", r.MultiValueHeaders)
					}
					header = single(r.Headers)
					cookies = []string{"a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT"}
					if got := r.Headers["Set-Cookie"]; got != cookies[0] {
						t.Errorf("Set-Cookie in single-value mode: got %q, want the first, %q", got, cookies[0])
					}
				}
			case strings.HasPrefix(tt.event, "apigw-request"):
				var r events.APIGatewayProxyResponse
				mustUnmarshal(t, raw, &r)
				status, body, b64 = r.StatusCode, r.Body, r.IsBase64Encoded
				header = http.Header(r.MultiValueHeaders)
				cookies = header["Set-Cookie"]
			default:
				var r events.APIGatewayV2HTTPResponse
				mustUnmarshal(t, raw, &r)
				var u events.LambdaFunctionURLResponse
				mustUnmarshal(t, raw, &u)
				status, body, b64, cookies = r.StatusCode, r.Body, r.IsBase64Encoded, r.Cookies
				if !reflect.DeepEqual(u.Cookies, r.Cookies) || u.Body != r.Body {
					t.Errorf("function URL and HTTP API responses differ")
				}
				if _, ok := r.Headers["Set-Cookie"]; ok {
					t.Errorf("Set-Cookie in headers; want it in cookies[] only")
				}
				header = single(r.Headers)
				if got := r.Headers["X-Multi"]; got != "x,y" {
					t.Errorf("repeated header: got %q, want %q", got, "x,y")
				}
			}
			if status != http.StatusCreated {
				t.Errorf("status: got %d, want 201", status)
			}
			if b64 != tt.wantB64 {
				t.Errorf("isBase64Encoded: got %v, want %v", b64, tt.wantB64)
			}
			got := []byte(body)
			if b64 {
				var err error
				if got, err = base64.StdEncoding.DecodeString(body); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, tt.body) {
				t.Errorf("body: got %q, want %q", got, tt.body)
			}
			if want := []string{"a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT"}; !reflect.DeepEqual(cookies, want) {
				t.Errorf("cookies: got %q, want %q", cookies, want)
			}
			if got := header.Get("Content-Type"); got != tt.ct {
				t.Errorf("Content-Type: got %q, want %q", got, tt.ct)
			}
			if got := header.Get("X-Request-Id"); got != testRequestID {
				t.Errorf("X-Request-Id: got %q, want %q", got, testRequestID)
			}
		})
	}
}

func single(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

// TestErrors checks the error shape on an HTTP event and on a direct invoke.
func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		resp       *functions.Response
		status     int
		wantType   string
		wantMsg    string
		retryAfter string
	}{
		{name: "status error", err: functions.Errorf(http.StatusBadRequest, "unknown flower %q", "rose"),
			status: 400, wantType: "BadRequest", wantMsg: `400 Bad Request: unknown flower "rose"`},
		{name: "plain error is a 500 without detail", err: errors.New("secret detail"),
			status: 500, wantType: "InternalServerError", wantMsg: "500 Internal Server Error: internal error (request id " + testRequestID + ")"},
		{name: "429 with Retry-After", err: &functions.Error{Status: 429, Message: "slow down", RetryAfter: 2e9},
			status: 429, wantType: "TooManyRequests", wantMsg: "429 Too Many Requests: slow down", retryAfter: "2"},
		{name: "a response with an error status", resp: functions.Bytes(404, "application/json", functions.ErrorBody("no model v9")),
			status: 404, wantType: "NotFound", wantMsg: "404 Not Found: no model v9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
				return tt.resp, tt.err
			})
			h, _ := lambda.Handler(e)

			out, err := h(lambdaContext(t), readEvent(t, "lambda-urls-request.json"))
			if err != nil {
				t.Fatalf("an HTTP event answers errors as responses, got a function error: %v", err)
			}
			var r events.LambdaFunctionURLResponse
			mustUnmarshal(t, []byte(readAll(t, out)), &r)
			if r.StatusCode != tt.status {
				t.Errorf("status: got %d, want %d", r.StatusCode, tt.status)
			}
			if r.Headers["Retry-After"] != tt.retryAfter {
				t.Errorf("Retry-After: got %q, want %q", r.Headers["Retry-After"], tt.retryAfter)
			}
			if tt.err != nil {
				var body struct{ Error string }
				mustUnmarshal(t, []byte(r.Body), &body)
				if !strings.HasSuffix(tt.wantMsg, body.Error) || body.Error == "" {
					t.Errorf("body: got %q, want the message of %q", r.Body, tt.wantMsg)
				}
			}

			_, err = h(lambdaContext(t), json.RawMessage(`{"x": 1}`))
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) {
				t.Fatalf("direct invoke: got %v, want a messages.InvokeResponse_Error", err)
			}
			if ie.Type != tt.wantType || ie.Message != tt.wantMsg {
				t.Errorf("direct invoke error:\n got %q %q\nwant %q %q", ie.Type, ie.Message, tt.wantType, tt.wantMsg)
			}
		})
	}
}

// TestLimits checks the 413s: a request body over the engine's limit, and
// a buffered response over Lambda's.
func TestLimits(t *testing.T) {
	big := make([]byte, lambda.MaxBufferedResponse)
	e := answer(functions.Bytes(http.StatusOK, "application/octet-stream", big))
	e.maxBody = 1 << 10
	h, _ := lambda.Handler(e)

	ev := strings.Replace(string(readEvent(t, "lambda-urls-request.json")), "Hello from client!", strings.Repeat("x", 1<<10+1), 1)
	r := urlResponse(t, h, ev)
	if r.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(r.Body, "1025 bytes") {
		t.Errorf("request over the limit: got %d %s, want 413 naming the size", r.StatusCode, r.Body)
	}
	// A base64 body's 413 names its decoded size, as over HTTP, whatever
	// its padding ("=", "==" or none).
	for _, n := range []int{1<<10 + 1, 1<<10 + 2, 1<<10 + 3} {
		b64 := strings.Replace(string(readEvent(t, "function-url-domain-only-request-with-base64-encoded-body.json")),
			`"PGlkay8+"`, `"`+base64.StdEncoding.EncodeToString(make([]byte, n))+`"`, 1)
		if r := urlResponse(t, h, b64); r.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(r.Body, fmt.Sprintf(" %d bytes", n)) {
			t.Errorf("base64 request of %d bytes over the limit: got %d %s, want 413 naming the size", n, r.StatusCode, r.Body)
		}
	}
	if _, err := h(lambdaContext(t), json.RawMessage(`"`+strings.Repeat("x", 1<<10)+`"`)); err == nil || !strings.Contains(err.Error(), "RequestEntityTooLarge") {
		t.Errorf("direct invoke over the limit: got %v, want RequestEntityTooLarge", err)
	}

	r = urlResponse(t, h, string(readEvent(t, "lambda-urls-request.json")))
	if r.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(r.Body, "RESPONSE_STREAM") {
		t.Errorf("response over 6 MB: got %d %s, want 413 that points to streaming", r.StatusCode, r.Body)
	}
	alb := answer(functions.Bytes(http.StatusOK, "text/plain", bytes.Repeat([]byte("a"), lambda.MaxALBResponse)))
	ha, _ := lambda.Handler(alb)
	out, err := ha(lambdaContext(t), posted(t, "alb-lambda-target-request-headers-only.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ar events.ALBTargetGroupResponse
	mustUnmarshal(t, []byte(readAll(t, out)), &ar)
	if ar.StatusCode != http.StatusRequestEntityTooLarge || ar.StatusDescription != "413 Request Entity Too Large" {
		t.Errorf("ALB response over 1 MB: got %d %q, want 413", ar.StatusCode, ar.StatusDescription)
	}
}

func urlResponse(t *testing.T, h lambda.HandlerFunc, ev string) events.LambdaFunctionURLResponse {
	t.Helper()
	out, err := h(lambdaContext(t), json.RawMessage(ev))
	if err != nil {
		t.Fatal(err)
	}
	var r events.LambdaFunctionURLResponse
	mustUnmarshal(t, []byte(readAll(t, out)), &r)
	return r
}

// TestStreaming checks RESPONSE_STREAM: a function URL event is answered
// with the streaming prelude and the raw body, past the buffered limit.
func TestStreaming(t *testing.T) {
	body := bytes.Repeat([]byte{0, 1, 2, 3}, lambda.MaxBufferedResponse/2)
	resp := withCookies("application/octet-stream", body)
	for _, env := range []bool{true, false} {
		var h lambda.HandlerFunc
		if env {
			t.Setenv(lambda.EnvInvokeMode, "RESPONSE_STREAM")
			h, _ = lambda.Handler(answer(resp))
		} else {
			t.Setenv(lambda.EnvInvokeMode, "")
			h, _ = lambda.Handler(answer(resp), lambda.WithResponseStreaming(true))
		}
		out, err := h(lambdaContext(t), readEvent(t, "lambda-urls-request.json"))
		if err != nil {
			t.Fatal(err)
		}
		if ct := out.(contentTyper).ContentType(); ct != "application/vnd.awslambda.http-integration-response" {
			t.Fatalf("Content-Type: got %q, want the streaming integration type", ct)
		}
		raw, _ := io.ReadAll(out)
		prelude, rest, ok := bytes.Cut(raw, make([]byte, 8))
		if !ok {
			t.Fatal("no prelude separator")
		}
		var p struct {
			StatusCode int               `json:"statusCode"`
			Headers    map[string]string `json:"headers"`
			Cookies    []string          `json:"cookies"`
		}
		mustUnmarshal(t, prelude, &p)
		if p.StatusCode != http.StatusCreated || len(p.Cookies) != 2 || p.Headers["X-Multi"] != "x,y" || p.Headers["X-Request-Id"] != testRequestID {
			t.Errorf("prelude: got %+v", p)
		}
		if !bytes.Equal(rest, body) {
			t.Errorf("streamed body: got %d bytes, want %d", len(rest), len(body))
		}
		// Other events stay buffered.
		out, _ = h(lambdaContext(t), readEvent(t, "apigw-request.json"))
		if ct := out.(contentTyper).ContentType(); ct != "application/json" {
			t.Errorf("REST event in streaming mode: got %q, want a buffered JSON result", ct)
		}
	}
	t.Setenv(lambda.EnvInvokeMode, "sometimes")
	if _, err := lambda.Handler(answer(resp)); err == nil {
		t.Error("an invalid invoke mode: got no error")
	}
}

// TestDeadline checks that the Lambda deadline bounds the prediction, with
// a reserve so the 504 is sent in time.
func TestDeadline(t *testing.T) {
	lefts := make(chan time.Duration, 1)
	e := newTestEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		d, _ := ctx.Deadline()
		lefts <- time.Until(d)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	h, _ := lambda.Handler(e)
	ctx, cancel := context.WithTimeout(lambdaContext(t), 500*time.Millisecond)
	defer cancel()
	out, err := h(ctx, readEvent(t, "lambda-urls-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r events.LambdaFunctionURLResponse
	mustUnmarshal(t, []byte(readAll(t, out)), &r)
	if r.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status: got %d, want 504", r.StatusCode)
	}
	// The prediction's deadline is the invocation's less the reserve (10%
	// of the time left, here 50ms), so the 504 can be sent before Lambda
	// ends the invocation. How much of it is left when the predictor starts
	// depends on the machine's load; that the reserve came off does not.
	if left := <-lefts; left > 450*time.Millisecond || left <= 0 {
		t.Errorf("time left for the prediction: got %s, want at most 450ms (500ms less a 10%% reserve)", left)
	}
}

// TestEnginePanicIsA500 checks the carrier's own recover, behind the
// engine's.
func TestEnginePanicIsA500(t *testing.T) {
	h, _ := lambda.Handler(&panicky{testEngine{maxBody: 1 << 20}})
	r := urlResponse(t, h, string(readEvent(t, "lambda-urls-request.json")))
	if r.StatusCode != http.StatusInternalServerError {
		t.Errorf("status: got %d, want 500", r.StatusCode)
	}
}

type panicky struct{ testEngine }

func (*panicky) Invoke(context.Context, *functions.Request) (*functions.Response, error) {
	panic("engine bug")
}
