package http_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// The routes are tested against the real iris sample: the real ONNX Runtime
// library (fetched by `cortex setup`) and the real trained model.

func serve(t *testing.T, p functions.Predictor, cfg runtime.Config) *httptest.Server {
	t.Helper()
	rt, err := runtime.New(p, cfg, runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpadapter.New(rt, httpadapter.WithMetrics(rt.MetricsHandler())))
	t.Cleanup(func() {
		srv.Close()
		_ = rt.Shutdown(context.Background())
	})
	return srv
}

func irisConfig(limits runtime.Limits) runtime.Config {
	dir, _ := filepath.Abs("../../samples/iris")
	return runtime.Config{
		Name:      "iris",
		Dir:       dir,
		Predictor: runtime.PredictorConfig{Type: "onnx", Model: "model/iris.onnx"},
		Limits:    limits,
	}
}

var (
	irisOnce sync.Once
	irisSrv  *httptest.Server
)

// iris returns one server shared by the route tests: loading the model once
// keeps the suite fast.
func iris(t *testing.T) string {
	irisOnce.Do(func() {
		rt, err := runtime.New(onnx.New(), irisConfig(runtime.Limits{MaxBody: 4096}),
			runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(context.Background()); err != nil {
			t.Fatalf("starting the iris function: %v", err)
		}
		irisSrv = httptest.NewServer(httpadapter.New(rt, httpadapter.WithMetrics(rt.MetricsHandler())))
	})
	if irisSrv == nil {
		t.Fatal("iris server failed to start")
	}
	return irisSrv.URL
}

const setosa = `{"id":"req-1","inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, body string, header ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// jsonPath decodes body and walks a dotted path of keys and indexes.
func jsonPath(t *testing.T, body string, path ...any) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: not an object in %s", k, body)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at [%d]: not an array long enough in %s", k, body)
			}
			v = a[k]
		}
	}
	return v
}

func TestRoutes(t *testing.T) {
	base := iris(t)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		check                    func(t *testing.T, r reply)
	}{
		{name: "predict", method: "POST", path: "/predict", body: setosa, wantStatus: 200, check: func(t *testing.T, r reply) {
			if got := jsonPath(t, r.body, "outputs", 0, "name"); got != "label" {
				t.Errorf("first output = %v, want label", got)
			}
			if got := jsonPath(t, r.body, "outputs", 0, "data", 0); got != 0.0 {
				t.Errorf("label = %v, want 0 (setosa)", got)
			}
			if got := jsonPath(t, r.body, "id"); got != "req-1" {
				t.Errorf("id = %v, want the request's", got)
			}
		}},
		{name: "root", method: "POST", path: "/", body: setosa, wantStatus: 200},
		{name: "oip infer", method: "POST", path: "/v2/models/iris/infer", body: setosa, wantStatus: 200, check: func(t *testing.T, r reply) {
			if got := jsonPath(t, r.body, "model_name"); got != "iris" {
				t.Errorf("model_name = %v", got)
			}
			probs := jsonPath(t, r.body, "outputs", 1, "data").([]any)
			if len(probs) != 3 || probs[0].(float64) < 0.9 {
				t.Errorf("probabilities = %v, want 3 with setosa > 0.9", probs)
			}
		}},
		{name: "oip infer version", method: "POST", path: "/v2/models/iris/versions/1/infer", body: setosa, wantStatus: 200},
		{name: "oip server metadata", method: "GET", path: "/v2", wantStatus: 200, check: func(t *testing.T, r reply) {
			if got := jsonPath(t, r.body, "name"); got != "cortex" {
				t.Errorf("name = %v", got)
			}
		}},
		{name: "oip live", method: "GET", path: "/v2/health/live", wantStatus: 200},
		{name: "oip ready", method: "GET", path: "/v2/health/ready", wantStatus: 200},
		{name: "oip model metadata", method: "GET", path: "/v2/models/iris", wantStatus: 200, check: func(t *testing.T, r reply) {
			if got := jsonPath(t, r.body, "inputs", 0, "name"); got != "input" {
				t.Errorf("input name = %v", got)
			}
			if got := jsonPath(t, r.body, "inputs", 0, "datatype"); got != "FP32" {
				t.Errorf("input datatype = %v", got)
			}
			if got := jsonPath(t, r.body, "outputs", 1, "name"); got != "probabilities" {
				t.Errorf("second output = %v", got)
			}
		}},
		{name: "oip model ready", method: "GET", path: "/v2/models/iris/ready", wantStatus: 200},
		{name: "oip model index", method: "GET", path: "/v2/models", wantStatus: 200, check: func(t *testing.T, r reply) {
			if got := jsonPath(t, r.body, "models"); !sameJSON(got, []any{"iris"}) {
				t.Errorf("models = %v, want [iris]", got)
			}
		}},
		{name: "v1 model index", method: "GET", path: "/v1/models/", wantStatus: 200, check: func(t *testing.T, r reply) {
			if got := jsonPath(t, r.body, "models"); !sameJSON(got, []any{"iris"}) {
				t.Errorf("models = %v, want [iris]", got)
			}
		}},
		{name: "model index is read-only", method: "POST", path: "/v1/models", body: setosa, wantStatus: 405},
		{name: "v1 predict", method: "POST", path: "/v1/models/iris:predict",
			body: `{"instances":[[5.1,3.5,1.4,0.2],[5.9,3.0,4.2,1.5],[6.7,3.0,5.2,2.3]]}`, wantStatus: 200, check: func(t *testing.T, r reply) {
				if got := jsonPath(t, r.body, "predictions"); !sameJSON(got, []any{0.0, 1.0, 2.0}) {
					t.Errorf("predictions = %v, want [0 1 2]", got)
				}
			}},
		{name: "v1 model status", method: "GET", path: "/v1/models/iris", wantStatus: 200, check: func(t *testing.T, r reply) {
			if got := jsonPath(t, r.body, "ready"); got != true {
				t.Errorf("ready = %v", got)
			}
		}},
		{name: "healthz", method: "GET", path: "/healthz", wantStatus: 200},
		{name: "readyz", method: "GET", path: "/readyz", wantStatus: 200},
		{name: "metrics", method: "GET", path: "/metrics", wantStatus: 200, check: func(t *testing.T, r reply) {
			if !strings.Contains(r.body, "cortex_requests_total") || !strings.Contains(r.body, `function="iris"`) {
				t.Errorf("metrics lack cortex_requests_total{function=\"iris\"}")
			}
		}},

		// Bad input: each a JSON error with a status and a message naming the problem.
		{name: "malformed JSON", method: "POST", path: "/predict", body: `{"inputs": [`, wantStatus: 400},
		{name: "empty body", method: "POST", path: "/predict", body: ``, wantStatus: 400},
		{name: "wrong tensor name", method: "POST", path: "/predict", wantStatus: 422,
			body:  `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`,
			check: wantError("input")},
		{name: "wrong shape", method: "POST", path: "/predict", wantStatus: 422,
			body:  `{"inputs":[{"name":"input","shape":[1,5],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,1]}]}`,
			check: wantError("shape")},
		{name: "wrong datatype", method: "POST", path: "/predict", wantStatus: 422,
			body:  `{"inputs":[{"name":"input","shape":[1,4],"datatype":"INT64","data":[5,3,1,0]}]}`,
			check: wantError("FP32")},
		{name: "element count", method: "POST", path: "/predict", wantStatus: 400,
			body:  `{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`,
			check: wantError("8")},
		{name: "oversized body", method: "POST", path: "/predict", body: `{"inputs":[` + strings.Repeat(" ", 5000) + `]}`, wantStatus: 413,
			check: wantError("limits.max_body")},
		{name: "unknown route", method: "GET", path: "/nope", wantStatus: 404, check: wantError("POST /predict")},
		{name: "unknown model", method: "POST", path: "/v2/models/tulip/infer", body: setosa, wantStatus: 404, check: wantError(`"iris"`)},
		{name: "unknown v1 model", method: "POST", path: "/v1/models/tulip:predict", body: `{"instances":[]}`, wantStatus: 404},
		{name: "unknown v1 verb", method: "POST", path: "/v1/models/iris:explain", body: `{}`, wantStatus: 404},
		{name: "wrong method", method: "GET", path: "/predict", wantStatus: 405, check: func(t *testing.T, r reply) {
			if r.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", r.header.Get("Allow"))
			}
			wantError("method GET")(t, r)
		}},
		{name: "v1 bad instances", method: "POST", path: "/v1/models/iris:predict", body: `{"instances":[[1,2]]}`, wantStatus: 422,
			check: wantError("$.instances: [1,2] does not match the model's [-1,4]")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, base+tt.path, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("%s %s = %d, want %d\n%s", tt.method, tt.path, r.status, tt.wantStatus, r.body)
			}
			if r.status >= 400 {
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("error Content-Type = %q, want application/json", ct)
				}
				if msg, ok := jsonPath(t, r.body, "error").(string); !ok || msg == "" {
					t.Errorf("error body = %s, want {\"error\": \"...\"}", r.body)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func wantError(substr string) func(t *testing.T, r reply) {
	return func(t *testing.T, r reply) {
		t.Helper()
		msg, _ := jsonPath(t, r.body, "error").(string)
		if !strings.Contains(msg, substr) {
			t.Errorf("error = %q, want it to mention %q", msg, substr)
		}
	}
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestRequestIDHeader(t *testing.T) {
	base := iris(t)
	r := do(t, "POST", base+"/predict", setosa, "X-Request-Id", "abc-123")
	if got := r.header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	r = do(t, "POST", base+"/predict", `{`)
	if got := r.header.Get("X-Request-Id"); len(got) != 32 {
		t.Errorf("generated X-Request-Id = %q on an error, want 32 hex chars", got)
	}
}

// A Go predictor sees the request as it came and answers with any status.
func TestGoPredictorContract(t *testing.T) {
	var got *functions.Request
	srv := serve(t, functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		got = req
		switch req.Query.Get("case") {
		case "status":
			return nil, functions.Errorf(http.StatusUnprocessableEntity, "field %q must be positive", "n")
		case "panic":
			panic("predictor bug")
		case "teapot":
			return functions.Text(http.StatusTeapot, "short and stout"), nil
		}
		return functions.Bytes(http.StatusCreated, "application/x-custom", []byte("raw")), nil
	}), runtime.Config{Name: "go-fn"})

	r := do(t, "POST", srv.URL+"/predict?model=a&x=1&x=2", "payload", "X-Custom", "v")
	if r.status != 201 || r.body != "raw" || r.header.Get("Content-Type") != "application/x-custom" {
		t.Errorf("reply = %+v, want 201 raw application/x-custom", r)
	}
	if string(got.Body) != "payload" || got.Header.Get("X-Custom") != "v" || len(got.Query["x"]) != 2 ||
		got.Path != "/predict" || got.Method != "POST" || got.Carrier != functions.CarrierHTTP || got.Model != "a" {
		t.Errorf("request reached the predictor as %+v", got)
	}

	r = do(t, "POST", srv.URL+"/predict?case=status", "{}")
	if r.status != 422 || jsonPath(t, r.body, "error") != `field "n" must be positive` {
		t.Errorf("status error reply = %+v", r)
	}
	r = do(t, "POST", srv.URL+"/predict?case=panic", "{}")
	if r.status != 500 || strings.Contains(r.body, "predictor bug") || !strings.Contains(r.body, r.header.Get("X-Request-Id")) {
		t.Errorf("panic reply = %+v, want 500 naming the request id and hiding the panic", r)
	}
	r = do(t, "POST", srv.URL+"/predict?case=teapot", "{}")
	if r.status != 418 || r.body != "short and stout" {
		t.Errorf("teapot reply = %+v", r)
	}
	// Without tensor metadata, a V1 body reaches the predictor as it came.
	do(t, "POST", srv.URL+"/v1/models/go-fn:predict", `{"instances":[1]}`)
	if got.Protocol != functions.ProtocolKServeV1 || string(got.Body) != `{"instances":[1]}` {
		t.Errorf("V1 request reached the predictor as protocol %q body %q", got.Protocol, got.Body)
	}
}

func TestQueueFullOverHTTP(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv := serve(t, functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		entered <- struct{}{}
		<-release
		return functions.Text(200, "ok"), nil
	}), runtime.Config{Name: "busy", Limits: runtime.Limits{MaxConcurrency: 1, MaxQueue: -1}})

	first := make(chan reply, 1)
	go func() { first <- do(t, "POST", srv.URL+"/predict", "x") }()
	<-entered
	r := do(t, "POST", srv.URL+"/predict", "x")
	if r.status != 503 || r.header.Get("Retry-After") != "1" {
		t.Errorf("busy reply = %d Retry-After %q, want 503 with Retry-After 1", r.status, r.header.Get("Retry-After"))
	}
	close(release)
	if r := <-first; r.status != 200 {
		t.Errorf("admitted request = %d", r.status)
	}
}

// bareEngine is an engine without a catalog (adapters.Catalog): it serves
// predictions and nothing about models.
type bareEngine struct{}

func (bareEngine) Name() string   { return "bare" }
func (bareEngine) MaxBody() int64 { return 1 << 20 }
func (bareEngine) Ready() bool    { return true }
func (bareEngine) Invoke(_ context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.Text(http.StatusOK, "predicted "+req.Model), nil
}

// TestEngineWithoutCatalog: the model routes are the catalog's, so an
// engine without one has none (404, as for any path that is not a route),
// while its predictions, the OIP route's included, reach it.
func TestEngineWithoutCatalog(t *testing.T) {
	srv := httptest.NewServer(httpadapter.New(bareEngine{}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/v2/models/bare", "/v2/models/bare/ready", "/v1/models/bare", "/v2/models", "/v1/models"} {
		r := do(t, "GET", srv.URL+path, "")
		want := "no route for GET " + path + ": send predictions to POST /predict, POST /v2/models/bare/infer or POST /v1/models/bare:predict"
		if r.status != http.StatusNotFound || jsonPath(t, r.body, "error") != want {
			t.Errorf("GET %s: got %d %s, want 404 %q", path, r.status, r.body, want)
		}
	}
	if r := do(t, "POST", srv.URL+"/v2/models/bare/infer", "{}"); r.status != http.StatusOK || r.body != "predicted bare" {
		t.Errorf("POST /v2/models/bare/infer: got %d %s, want the engine's answer", r.status, r.body)
	}
}
