package lambda_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// eventKind builds an HTTP event of one shape, from a captured event of
// that shape, for a request to path (the path after the function's root)
// with method and body. The function is mounted the way a user mounts it:
// at the root of a function URL or an ALB, on a named stage of an HTTP API
// (the stage is in the event's path), behind a greedy {proxy+} resource of
// a REST API.
type eventKind struct {
	name  string
	build func(t testing.TB, method, path, body string) []byte
}

var eventKinds = []eventKind{
	{"function URL", func(t testing.TB, method, path, body string) []byte {
		var ev events.LambdaFunctionURLRequest
		mustUnmarshal(t, readEvent(t, "lambda-urls-request.json"), &ev)
		ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = path, path, method
		ev.RawQueryString, ev.QueryStringParameters = "", nil
		ev.Headers["content-type"] = "application/json"
		ev.Body = body
		return marshal(t, ev)
	}},
	{"HTTP API v2 on stage prod", func(t testing.TB, method, path, body string) []byte {
		var ev events.APIGatewayV2HTTPRequest
		mustUnmarshal(t, readEvent(t, "cortex-apigw-v2-stage.json"), &ev)
		ev.RouteKey, ev.RequestContext.RouteKey = "$default", "$default"
		ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = "/prod"+path, "/prod"+path, method
		ev.RawQueryString = ""
		ev.Body = body
		return marshal(t, ev)
	}},
	{"HTTP API payload 1.0 on stage prod", func(t testing.TB, method, path, body string) []byte {
		// aws-lambda-go has no type for format 1.0 with its version field.
		var ev map[string]any
		mustUnmarshal(t, readEvent(t, "cortex-apigw-http-v1-stage.json"), &ev)
		rc := ev["requestContext"].(map[string]any)
		ev["resource"], rc["resourcePath"] = path, path
		ev["path"], rc["path"] = "/prod"+path, "/prod"+path
		ev["httpMethod"], rc["httpMethod"] = method, method
		ev["queryStringParameters"], ev["multiValueQueryStringParameters"] = nil, nil
		ev["body"] = body
		return marshal(t, ev)
	}},
	{"REST API v1 behind {proxy+}", func(t testing.TB, method, path, body string) []byte {
		var ev events.APIGatewayProxyRequest
		mustUnmarshal(t, readEvent(t, "apigw-request.json"), &ev)
		ev.Resource, ev.PathParameters = "/{proxy+}", map[string]string{"proxy": strings.TrimPrefix(path, "/")}
		if path == "/" {
			ev.Resource, ev.PathParameters = "/", nil // {proxy+} does not match the root
		}
		ev.Path, ev.RequestContext.ResourcePath = path, ev.Resource
		ev.HTTPMethod, ev.RequestContext.HTTPMethod = method, method
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = nil, nil
		ev.Body = body
		return marshal(t, ev)
	}},
	{"ALB", func(t testing.TB, method, path, body string) []byte {
		var ev events.ALBTargetGroupRequest
		mustUnmarshal(t, readEvent(t, "alb-lambda-target-request-headers-only.json"), &ev)
		ev.HTTPMethod, ev.Path, ev.QueryStringParameters = method, path, nil
		ev.Headers["content-type"] = "application/json"
		ev.Body = body
		return marshal(t, ev)
	}},
	{"ALB with multi-value headers", func(t testing.TB, method, path, body string) []byte {
		var ev events.ALBTargetGroupRequest
		mustUnmarshal(t, readEvent(t, "alb-lambda-target-request-multivalue-headers.json"), &ev)
		ev.HTTPMethod, ev.Path, ev.MultiValueQueryStringParameters = method, path, nil
		ev.MultiValueHeaders["content-type"] = []string{"application/json"}
		ev.Body = body
		return marshal(t, ev)
	}},
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// httpAnswer is what a client sees: over plain HTTP, or through API
// Gateway, an ALB or a function URL from the event response.
type httpAnswer struct {
	status int
	header http.Header
	body   string
}

// eventAnswer runs an HTTP event through h and decodes the result the way
// the invoking service does.
func eventAnswer(t testing.TB, h lambda.HandlerFunc, payload []byte) httpAnswer {
	t.Helper()
	out, err := h(lambdaContext(t), payload)
	if err != nil {
		t.Fatalf("an HTTP event got a function error: %v", err)
	}
	return decodeAnswer(t, []byte(readAll(t, out)))
}

// decodeAnswer reads an HTTP event's result as the invoking service does.
func decodeAnswer(t testing.TB, result []byte) httpAnswer {
	t.Helper()
	var r struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Body              string              `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	mustUnmarshal(t, result, &r)
	a := httpAnswer{status: r.StatusCode, header: http.Header(r.MultiValueHeaders), body: r.Body}
	if a.header == nil {
		a.header = single(r.Headers)
	}
	if r.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		a.body = string(b)
	}
	return a
}

func plainHTTP(t testing.TB, srv *httptest.Server, method, path, body string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return httpAnswer{status: resp.StatusCode, header: resp.Header, body: readAll(t, resp.Body)}
}

// routePredictor answers every prediction with the method and path it saw,
// and counts them.
type routePredictor struct{ calls atomic.Int64 }

func (p *routePredictor) Predict(_ context.Context, req *functions.Request) (*functions.Response, error) {
	p.calls.Add(1)
	return functions.JSON(http.StatusOK, map[string]string{"method": req.Method, "path": req.Path, "body": string(req.Body)})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRoutesRuntime(t testing.TB, p functions.Predictor, start bool) *runtime.Runtime {
	t.Helper()
	rt, err := runtime.New(p, runtime.Config{Name: "fn"}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if start {
		if err := rt.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	return rt
}

// TestRoutesMatchHTTP sends the same requests over plain HTTP and, as
// Lambda events of every shape, through the Lambda carrier: health,
// readiness, the OIP and KServe V1 metadata routes and a wrong method
// answer the same status, body and Allow header, and only a POST reaches
// the predictor.
func TestRoutesMatchHTTP(t *testing.T) {
	tests := []struct {
		method, path, body string
		predicts           bool // the predictor answers it
	}{
		{method: "GET", path: "/healthz"},
		{method: "HEAD", path: "/healthz"},
		{method: "POST", path: "/healthz", body: `{"x": 1}`},
		{method: "GET", path: "/readyz"},
		{method: "GET", path: "/v2"},
		{method: "GET", path: "/v2/health/live"},
		{method: "GET", path: "/v2/health/ready"},
		{method: "GET", path: "/v2/models/fn"},
		{method: "GET", path: "/v2/models/fn/ready"},
		{method: "GET", path: "/v2/models/fn/versions/3"},
		{method: "GET", path: "/v2/models/iris"},
		{method: "DELETE", path: "/v2/models/fn"},
		{method: "GET", path: "/v1/models/fn"},
		{method: "GET", path: "/v1/models/iris"},
		{method: "GET", path: "/predict"},
		{method: "GET", path: "/predict", body: `{"x": 1}`},
		{method: "DELETE", path: "/predict", body: `{"x": 1}`},
		{method: "HEAD", path: "/predict"},
		{method: "PUT", path: "/", body: `{"x": 1}`},
		{method: "GET", path: "/"},
		{method: "GET", path: "/docs"},
		{method: "POST", path: "/docs", body: `{"x": 1}`},
		{method: "GET", path: "/v2/models/fn/infer", body: `{"inputs": []}`},
		{method: "GET", path: "/v1/models/fn:predict", body: `{"instances": []}`},
		{method: "POST", path: "/predict", body: `{"x": 1}`, predicts: true},
		{method: "POST", path: "/", body: `{"x": 1}`, predicts: true},
	}
	p := new(routePredictor)
	rt := newRoutesRuntime(t, p, true)
	srv := httptest.NewServer(httpadapter.New(rt, httpadapter.WithoutCompression()))
	t.Cleanup(srv.Close)
	// The HTTP carrier serves the function's page; the Lambda carrier
	// does when told to.
	h, err := lambda.Handler(rt, lambda.WithPages())
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range eventKinds {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.method+" "+tt.path, func(t *testing.T) {
				want := plainHTTP(t, srv, tt.method, tt.path, tt.body)
				before := p.calls.Load()
				got := eventAnswer(t, h, kind.build(t, tt.method, tt.path, tt.body))
				compareAnswers(t, got, want)
				if called := p.calls.Load() > before; called != tt.predicts {
					t.Errorf("the predictor was called: %v, want %v", called, tt.predicts)
				}
			})
		}
	}
}

func compareAnswers(t *testing.T, got, want httpAnswer) {
	t.Helper()
	if got.status != want.status || got.body != want.body {
		t.Errorf("got %d %q\nwant %d %q (as over HTTP)", got.status, got.body, want.status, want.body)
	}
	for _, k := range []string{"Content-Type", "Allow", "Retry-After"} {
		if g, w := got.header.Get(k), want.header.Get(k); g != w {
			t.Errorf("%s: got %q, want %q (as over HTTP)", k, g, w)
		}
	}
}

// TestRoutesBeforeReady checks readiness while the predictor has not
// initialised: 503 with Retry-After over Lambda as over HTTP, while
// liveness stays 200.
func TestRoutesBeforeReady(t *testing.T) {
	rt := newRoutesRuntime(t, new(routePredictor), false)
	srv := httptest.NewServer(httpadapter.New(rt, httpadapter.WithoutCompression()))
	t.Cleanup(srv.Close)
	h, _ := lambda.Handler(rt)
	for _, kind := range eventKinds {
		for _, path := range []string{"/healthz", "/readyz", "/v2/health/ready", "/v2/models/fn/ready"} {
			t.Run(kind.name+"/"+path, func(t *testing.T) {
				want := plainHTTP(t, srv, "GET", path, "")
				if path != "/healthz" && want.status != http.StatusServiceUnavailable {
					t.Fatalf("over HTTP: got %d, want 503", want.status)
				}
				compareAnswers(t, eventAnswer(t, h, kind.build(t, "GET", path, "")), want)
			})
		}
	}
}

// TestOwnRouteNeedsPOST checks the paths the HTTP carrier answers 404:
// behind API Gateway, an ALB or a function URL they are the function's own
// route, which takes POST as /predict does.
func TestOwnRouteNeedsPOST(t *testing.T) {
	p := new(routePredictor)
	h, _ := lambda.Handler(newRoutesRuntime(t, p, true))
	for _, kind := range eventKinds {
		t.Run(kind.name, func(t *testing.T) {
			got := eventAnswer(t, h, kind.build(t, "POST", "/iris/classify", `{"x": 1}`))
			if got.status != http.StatusOK || got.body != `{"body":"{\"x\": 1}","method":"POST","path":"/iris/classify"}` {
				t.Errorf("POST: got %d %s, want the prediction", got.status, got.body)
			}
			before := p.calls.Load()
			got = eventAnswer(t, h, kind.build(t, "GET", "/iris/classify", `{"x": 1}`))
			if got.status != http.StatusMethodNotAllowed || got.header.Get("Allow") != "POST" ||
				got.body != `{"error":"method GET not allowed on /iris/classify; use POST"}` {
				t.Errorf("GET: got %d %s (Allow %q), want 405 with Allow: POST", got.status, got.body, got.header.Get("Allow"))
			}
			if p.calls.Load() != before {
				t.Error("GET reached the predictor")
			}
		})
	}
}
