package onnx_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	adhttp "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// The tests in this file hold what a caller reads when a request goes
// wrong, on the real iris models behind the runtime and the HTTP carrier.

// serveIris serves the iris sample as its generated main would.
func serveIris(t *testing.T) *httptest.Server {
	t.Helper()
	dir, err := filepath.Abs(irisDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := runtime.Config{Name: "iris", Dir: dir, Predictor: runtime.PredictorConfig{Type: "onnx", Model: "model/iris.onnx"}}
	return serveRuntime(t, onnx.New(), cfg)
}

// serveIrisMulti serves samples/iris-multi (models/flowers and
// models/iris, behind the function iris-multi) as its generated main would.
func serveIrisMulti(t *testing.T) *httptest.Server {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "samples", "iris-multi"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := runtime.Config{Name: "iris-multi", Dir: dir, Predictor: runtime.PredictorConfig{Type: "onnx", ModelsDir: "models"}}
	return serveRuntime(t, onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(-1)), cfg)
}

func serveRuntime(t *testing.T, p functions.Predictor, cfg runtime.Config) *httptest.Server {
	t.Helper()
	rt, err := runtime.New(p, cfg, runtime.WithLogger(repoLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	srv := httptest.NewServer(adhttp.New(rt, adhttp.WithoutCompression()))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}

// goTypeName matches what the codec's Go types look like in a message:
// oip.wireRequest, []int64.
var goTypeName = regexp.MustCompile(`\boip\.|\[\][a-z]|\b(u?int|float)(8|16|32|64)\b`)

// TestRequestOfTheWrongShape sends OIP and KServe V1 requests whose JSON
// has a value of the wrong kind: the 400 names the request's field, with
// its array index, and no Go type.
func TestRequestOfTheWrongShape(t *testing.T) {
	srv := serveIris(t)
	tests := []struct {
		name, path, body string
		want             string
	}{
		{"shape as a string", "/v2/models/iris/infer", `{"inputs": [{"name": "input", "shape": "1x4", "datatype": "FP32", "data": [1, 2, 3, 4]}]}`,
			`inputs[0].shape: want an array of integers, got a string (offset 44)`},
		{"a dimension as a string", "/v2/models/iris/infer", `{"inputs": [{"name": "input", "shape": [1, "4"], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`,
			`inputs[0].shape[1]: want an integer, got a string (offset 46)`},
		{"inputs as an object", "/v2/models/iris/infer", `{"inputs": {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}}`,
			`inputs: want an array of objects, got an object (offset 12)`},
		{"the body as an array", "/v2/models/iris/infer", `[{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]`,
			`the request body: want an object, got an array (offset 1)`},
		{"V1 body as an array", "/v1/models/iris:predict", `[[5.1, 3.5, 1.4, 0.2]]`,
			`the request body: want an object, got an array (offset 1)`},
		{"truncated", "/v2/models/iris/infer", `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2`,
			`invalid JSON: the document ends early, at offset 80 (the end of the body)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := repoCall(t, "POST", srv.URL+tt.path, tt.body)
			if got.status != http.StatusBadRequest || got.body["error"] != tt.want {
				t.Errorf("POST %s: got %d %s\nwant 400 {\"error\": %q}", tt.path, got.status, got.raw, tt.want)
			}
			if m := goTypeName.FindString(got.raw); m != "" {
				t.Errorf("the answer %s names a Go type (%q)", got.raw, m)
			}
		})
	}
}

// TestModelNotFoundWording checks that every path that refuses an unknown
// model, on a one-model and on a multi-model function, words it alike.
func TestModelNotFoundWording(t *testing.T) {
	const one = `model "rose" not found; this function serves "iris"`
	const multi = `model "rose" not found; this function serves "flowers", "iris"`
	single, several := serveIris(t), serveIrisMulti(t)
	tests := []struct {
		name         string
		srv          *httptest.Server
		method, path string
		body         string
		want         string
	}{
		{"one model, OIP infer", single, "POST", "/v2/models/rose/infer", repoRow, one},
		{"one model, ?model=", single, "POST", "/predict?model=rose", repoRow, one},
		{"one model, V1 predict", single, "POST", "/v1/models/rose:predict", `{"instances": [[1, 2, 3, 4]]}`, one},
		{"one model, OIP metadata", single, "GET", "/v2/models/rose", "", one},
		{"one model, V1 status", single, "GET", "/v1/models/rose", "", one},
		{"several, OIP infer", several, "POST", "/v2/models/rose/infer", repoRow, multi},
		{"several, ?model=", several, "POST", "/predict?model=rose", repoRow, multi},
		{"several, OIP metadata", several, "GET", "/v2/models/rose", "", multi},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := repoCall(t, tt.method, tt.srv.URL+tt.path, tt.body)
			if got.status != http.StatusNotFound || got.body["error"] != tt.want {
				t.Errorf("%s %s: got %d %s\nwant 404 {\"error\": %q}", tt.method, tt.path, got.status, got.raw, tt.want)
			}
		})
	}
	// The predictor's own check, for a Go function that calls it directly.
	p := newIris(t)
	_, err := p.Predict(context.Background(), &functions.Request{Model: "rose", Body: []byte(repoRow)})
	if functions.StatusOf(err) != http.StatusNotFound || !strings.HasSuffix(err.Error(), ": "+one) {
		t.Errorf("Predict: got %v, want a 404 %q", err, one)
	}
}

// hint finds the routes a 404 for an unknown path suggests.
var hint = regexp.MustCompile(`POST (/v2/models/[^ ,]+/infer|/v1/models/[^ ,]+:predict)`)

// TestNotFoundHintReachesAModel follows the routes a 404 for a wrong path
// (or the 405 for a POST to the model list) suggests, on a function that
// serves several models: each must answer.
func TestNotFoundHintReachesAModel(t *testing.T) {
	srv := serveIrisMulti(t)
	for _, wrong := range []string{"/infer", "/v2/models", "/v2/models/iris/predict", "/v1/models/iris/x:predict", "/v1/models"} {
		t.Run(wrong, func(t *testing.T) {
			got := repoCall(t, "POST", srv.URL+wrong, repoRow)
			msg, _ := got.body["error"].(string)
			_, suggested, _ := strings.Cut(msg, "send predictions to ")
			routes := hint.FindAllStringSubmatch(suggested, -1)
			want := http.StatusNotFound
			if strings.HasSuffix(wrong, "/models") { // a route: GET lists the models
				want = http.StatusMethodNotAllowed
			}
			if got.status != want || len(routes) != 2 {
				t.Fatalf("POST %s: got %d %s, want a %d suggesting an OIP and a V1 route", wrong, got.status, got.raw, want)
			}
			for _, r := range routes {
				body := repoRow
				if strings.HasPrefix(r[1], "/v1/") {
					body = `{"instances": [[5.1, 3.5, 1.4, 0.2]]}`
				}
				if a := repoCall(t, "POST", srv.URL+r[1], body); a.status != http.StatusOK {
					t.Errorf("the hint %q of POST %s: got %d %s, want 200", r[0], wrong, a.status, a.raw)
				}
			}
		})
	}
}
