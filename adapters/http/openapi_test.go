package http_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/adapters"
	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// The document's validity by an OpenAPI validator is tested tool-side
// (internal/openapicheck); these tests check what it says.

// document fetches h's /openapi.json and decodes it.
func document(t *testing.T, h http.Handler) map[string]any {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/openapi.json", nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	return doc
}

// at walks doc by keys and indexes; nil when a step is missing.
func at(doc any, path ...any) any {
	v := doc
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestOpenAPITypedFunction(t *testing.T) {
	e := typedEngine()
	doc := document(t, httpadapter.New(e))
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"openapi"}, "3.1.0"},
		{[]any{"info", "title"}, "orders"},
		{[]any{"info", "version"}, "v0.3.0"},
		{[]any{"x-cortex", "digest"}, "sha256:0123456789abcdef"},
		{[]any{"servers", 0, "url"}, "."},
		{[]any{"paths", "/predict", "post", "requestBody", "content", "application/json", "schema", "$ref"}, "#/components/schemas/Input"},
		{[]any{"paths", "/", "post", "requestBody", "content", "application/json", "schema", "$ref"}, "#/components/schemas/Input"},
		{[]any{"paths", "/predict", "post", "responses", "200", "content", "application/json", "schema", "$ref"}, "#/components/schemas/Output"},
		// The schema's $defs are components of their own, its references
		// rewritten to them.
		{[]any{"components", "schemas", "Input", "$ref"}, "#/components/schemas/Input.Order"},
		{[]any{"components", "schemas", "Input.Order", "properties", "customer", "$ref"}, "#/components/schemas/Input.Customer"},
		{[]any{"components", "schemas", "Input.Order", "properties", "items", "items", "$ref"}, "#/components/schemas/Input.Item"},
		{[]any{"components", "schemas", "Input.Order", "properties", "priority", "enum", 2}, "high"},
		{[]any{"components", "schemas", "Input.Customer", "properties", "age", "maximum"}, 150.0},
		{[]any{"components", "schemas", "Input", "$schema"}, nil},
		{[]any{"components", "schemas", "Input", "$id"}, nil},
		{[]any{"paths", "/predict", "post", "responses", "422", "$ref"}, "#/components/responses/Invalid"},
		{[]any{"paths", "/predict", "post", "responses", "413", "$ref"}, "#/components/responses/TooLarge"},
		{[]any{"paths", "/predict", "post", "responses", "503", "$ref"}, "#/components/responses/Unavailable"},
		{[]any{"paths", "/predict", "post", "responses", "504", "$ref"}, "#/components/responses/Timeout"},
		{[]any{"paths", "/predict", "post", "responses", "401"}, nil}, // no auth
		{[]any{"components", "responses", "Unavailable", "headers", "Retry-After", "$ref"}, "#/components/headers/RetryAfter"},
		{[]any{"components", "schemas", "Error", "required", 0}, "error"},
		{[]any{"components", "schemas", "Error", "properties", "fields", "items", "required", 0}, "path"},
		{[]any{"paths", "/", "get", "responses", "200", "content", "text/html", "schema", "type"}, "string"},
		{[]any{"paths", "/docs", "get", "operationId"}, "docs"},
		{[]any{"paths", "/openapi.json", "get", "operationId"}, "openapi"},
		{[]any{"paths", "/healthz", "get", "operationId"}, "healthz"},
		{[]any{"paths", "/readyz", "get", "responses", "503", "$ref"}, "#/components/responses/Unavailable"},
		{[]any{"paths", "/v2", "get", "responses", "200", "content", "application/json", "schema", "$ref"}, "#/components/schemas/ServerMetadata"},
		{[]any{"paths", "/v2/models/{model_name}/infer", "post", "requestBody", "content", "application/json", "schema", "$ref"}, "#/components/schemas/InferenceRequest"},
		{[]any{"paths", "/v1/models/{model_name}:predict", "post", "operationId"}, "v1Predict"},
		// No catalogue: no model metadata routes, and no /metrics without
		// a metrics handler.
		{[]any{"paths", "/v2/models/{model_name}"}, nil},
		{[]any{"paths", "/v2/models"}, nil},
		{[]any{"paths", "/metrics"}, nil},
		{[]any{"paths", "/predict", "post", "responses", "200", "content", "text/event-stream"}, nil},
		{[]any{"security"}, nil},
	} {
		if got := at(doc, c.path...); !equalJSON(got, c.want) {
			t.Errorf("%v = %v, want %v", c.path, got, c.want)
		}
	}
	// Nothing still points at the schema's own root.
	b, _ := json.Marshal(doc)
	if strings.Contains(string(b), `"#/$defs`) {
		t.Errorf("a reference into $defs is left: %s", b)
	}
	// The schema's properties keep their order: the page lays the form
	// out in it.
	w := httptest.NewRecorder()
	httpadapter.New(e).ServeHTTP(w, httptest.NewRequest("GET", "/openapi.json", nil))
	body := w.Body.String()
	order := []string{`"customer"`, `"items"`, `"priority"`, `"gift"`, `"tags"`, `"note"`}
	last := -1
	for _, k := range order {
		i := strings.Index(body[strings.Index(body, `"Input.Order"`):], k)
		if i < last {
			t.Errorf("property %s moved: the order %v is not kept", k, order)
		}
		last = i
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestOpenAPIImageInput(t *testing.T) {
	doc := document(t, httpadapter.New(thumbnailEngine()))
	content := at(doc, "paths", "/predict", "post", "requestBody", "content")
	if got := keys(content); !slices.Equal(got, []string{"image/*"}) {
		t.Errorf("request media types = %v, want only image/* (no JSON schema)", got)
	}
	if got := at(content, "image/*", "schema", "contentMediaType"); got != "image/*" {
		t.Errorf("contentMediaType = %v", got)
	}
	if got := keys(at(doc, "paths", "/predict", "post", "responses", "200", "content")); !slices.Equal(got, []string{"application/json", "image/png"}) {
		t.Errorf("answer media types = %v", got)
	}
	// JSON and raw bodies both.
	doc = document(t, httpadapter.New(imageEngine()))
	if got := keys(at(doc, "paths", "/predict", "post", "requestBody", "content")); !slices.Equal(got, []string{"application/json", "image/jpeg", "image/png"}) {
		t.Errorf("request media types = %v", got)
	}
}

func TestOpenAPIStreamingFunction(t *testing.T) {
	doc := document(t, httpadapter.New(streamingEngine()))
	if got := at(doc, "paths", "/predict", "post", "responses", "200", "content", "text/event-stream", "schema", "type"); got != "string" {
		t.Errorf("no text/event-stream answer: %v", at(doc, "paths", "/predict", "post", "responses", "200"))
	}
	if got := at(doc, "x-cortex", "streams"); got != true {
		t.Errorf("x-cortex.streams = %v", got)
	}
}

// A function that runs predictions in the background says so on every
// prediction route (Prefer, a webhook, the 202) and has the prediction
// resource's routes.
func TestOpenAPIAsyncFunction(t *testing.T) {
	e := onnxEngine()
	e.describedEngine.desc.Async = true
	doc := document(t, httpadapter.New(e))
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"paths", "/predict", "post", "responses", "202", "headers", "Location", "schema", "type"}, "string"},
		{[]any{"paths", "/v2/models/iris/infer", "post", "responses", "202", "content", "application/json", "schema", "$ref"}, "#/components/schemas/Prediction"},
		{[]any{"paths", "/v1/models/{model_name}:predict", "post", "responses", "202", "content", "application/json", "schema", "$ref"}, "#/components/schemas/Prediction"},
		{[]any{"paths", "/predictions/{id}", "get", "operationId"}, "getPrediction"},
		{[]any{"paths", "/predictions/{id}", "put", "responses", "409", "$ref"}, "#/components/responses/Conflict"},
		{[]any{"paths", "/predictions/{id}/cancel", "post", "operationId"}, "cancelPrediction"},
		{[]any{"components", "schemas", "Prediction", "properties", "status", "enum", 4}, "canceled"},
	} {
		if got := at(doc, c.path...); !equalJSON(got, c.want) {
			t.Errorf("%v = %v, want %v", c.path, got, c.want)
		}
	}
	var prefer bool
	for _, p := range at(doc, "paths", "/predict", "post", "parameters").([]any) {
		prefer = prefer || p.(map[string]any)["name"] == "Prefer"
	}
	if !prefer {
		t.Error("POST /predict has no Prefer parameter")
	}
	doc = document(t, httpadapter.New(onnxEngine()))
	if got := at(doc, "paths", "/predictions/{id}"); got != nil {
		t.Errorf("a function without background predictions lists /predictions/{id}: %v", got)
	}
}

func TestOpenAPIOnnxFunction(t *testing.T) {
	e := onnxEngine()
	doc := document(t, httpadapter.New(e, httpadapter.WithMetrics(http.NotFoundHandler())))
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"x-cortex", "models", 0, "name"}, "iris"},
		{[]any{"x-cortex", "models", 0, "inputs", 0, "shape"}, []any{-1.0, 4.0}},
		{[]any{"x-cortex", "models", 0, "inputs", 0, "datatype"}, "FP32"},
		{[]any{"paths", "/v2/models/{model_name}", "get", "parameters", 0, "schema", "enum"}, []any{"iris"}},
		{[]any{"paths", "/v2/models/{model_name}/versions/{model_version}", "get", "operationId"}, "modelMetadataVersion"},
		{[]any{"paths", "/v2/models/{model_name}/ready", "get", "operationId"}, "modelReady"},
		{[]any{"paths", "/v2/models/{model_name}/versions/{model_version}/infer", "post", "operationId"}, "inferVersion"},
		{[]any{"paths", "/v2/models", "get", "responses", "200", "content", "application/json", "schema", "$ref"}, "#/components/schemas/ModelIndex"},
		{[]any{"paths", "/v1/models", "get", "operationId"}, "listModelsV1"},
		{[]any{"paths", "/v1/models/{model_name}", "get", "operationId"}, "v1ModelStatus"},
		{[]any{"paths", "/predict", "post", "parameters", 0, "name"}, "model"},
		// The own route takes iris's OIP request: the page offers its tensor form there.
		{[]any{"paths", "/predict", "post", "x-cortex-model"}, "iris"},
		{[]any{"paths", "/metrics", "get", "responses", "200", "content", "text/plain", "schema", "type"}, "string"},
		{[]any{"components", "schemas", "Datatype", "enum", 10}, "FP32"},
		// The model's own inference route, with its tensors' schemas.
		{[]any{"paths", "/v2/models/iris/infer", "post", "operationId"}, "infer_iris"},
		{[]any{"paths", "/v2/models/iris/infer", "post", "requestBody", "content", "application/json", "schema", "$ref"}, "#/components/schemas/Model.iris.Request"},
		{[]any{"components", "schemas", "Model.iris.Request", "properties", "inputs", "items", "properties", "shape", "prefixItems", 1, "const"}, 4.0},
		{[]any{"components", "schemas", "Model.iris.Request", "$schema"}, nil},
		{[]any{"paths", "/v2/models/iris/infer", "post", "responses", "200", "content", "application/json", "schema", "$ref"}, "#/components/schemas/Model.iris.Response"},
	} {
		if got := at(doc, c.path...); !equalJSON(got, c.want) {
			t.Errorf("%v = %v, want %v", c.path, got, c.want)
		}
	}
}

func TestOpenAPIAuth(t *testing.T) {
	e := typedEngine()
	e.desc.Auth = true
	doc := document(t, httpadapter.New(e))
	if got := at(doc, "components", "securitySchemes", "bearer", "scheme"); got != "bearer" {
		t.Errorf("security scheme = %v", got)
	}
	if got := at(doc, "security", 0, "bearer"); !equalJSON(got, []any{}) {
		t.Errorf("security = %v", at(doc, "security"))
	}
	// Probes and the page's shell are open; everything else answers 401.
	for _, p := range []string{"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/", "/docs"} {
		op := at(doc, "paths", p, "get")
		if got := at(op, "security"); !equalJSON(got, []any{}) {
			t.Errorf("GET %s security = %v, want [] (open)", p, got)
		}
		if at(op, "responses", "401") != nil {
			t.Errorf("GET %s lists a 401", p)
		}
	}
	for _, p := range []string{"/predict", "/v2/models/{model_name}/infer"} {
		if got := at(doc, "paths", p, "post", "responses", "401", "$ref"); got != "#/components/responses/Unauthorized" {
			t.Errorf("POST %s 401 = %v", p, got)
		}
	}
	if got := at(doc, "paths", "/openapi.json", "get", "responses", "401", "$ref"); got == nil {
		t.Error("the document itself needs the token, and says so")
	}
}

// TestOpenAPICache checks that the document is built once per description,
// answers a revalidation 304, and follows the description when it changes.
func TestOpenAPICache(t *testing.T) {
	e := onnxEngine()
	e.setModels(nil)
	h := httpadapter.New(e)
	get := func(header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/openapi.json", nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	first := get()
	etag := first.Header().Get("ETag")
	if etag == "" || first.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("headers %v", first.Header())
	}
	if w := get("If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", w.Code)
	}
	e.mu.Lock()
	e.ready = false // readiness is not in the document
	e.mu.Unlock()
	if w := get(); w.Header().Get("ETag") != etag || w.Body.String() != first.Body.String() {
		t.Error("the document changed with readiness")
	}
	e.setModels([]oip.ModelMetadata{irisMetadata})
	w := get()
	if w.Header().Get("ETag") == etag || !strings.Contains(w.Body.String(), `"probabilities"`) {
		t.Errorf("the document did not follow the models loading: %s", w.Header().Get("ETag"))
	}
}

func TestOpenAPIMethods(t *testing.T) {
	h := httpadapter.New(typedEngine())
	for _, c := range []struct {
		method string
		status int
		allow  string
	}{
		{"GET", 200, ""},
		{"HEAD", 200, ""},
		{"POST", 405, "GET, HEAD"},
		{"DELETE", 405, "GET, HEAD"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, "/openapi.json", nil))
		if w.Code != c.status || w.Header().Get("Allow") != c.allow {
			t.Errorf("%s /openapi.json: %d Allow %q, want %d %q", c.method, w.Code, w.Header().Get("Allow"), c.status, c.allow)
		}
		if c.method == "HEAD" && w.Body.Len() != 0 {
			t.Errorf("HEAD has a body")
		}
	}
	// Every carrier answers it: Lambda passes it to this handler.
	if !adapters.ServiceRoute("/openapi.json") {
		t.Error("/openapi.json is not a service route")
	}
}

// An engine that does not describe itself still gets a document: its
// name, the runtime's version, any JSON in and out.
func TestOpenAPIUndescribedEngine(t *testing.T) {
	doc := document(t, httpadapter.New(bareEngine{}, httpadapter.WithVersion("v9.9.9")))
	if at(doc, "info", "title") != "bare" || at(doc, "info", "version") != "v9.9.9" {
		t.Errorf("info = %v", at(doc, "info"))
	}
	if got := at(doc, "paths", "/predict", "post", "requestBody", "content", "application/json", "schema"); !equalJSON(got, map[string]any{}) {
		t.Errorf("request schema = %v, want {} (any JSON)", got)
	}
}

func TestOpenAPIBadSchema(t *testing.T) {
	e := typedEngine()
	e.desc.Schema = functions.Schema{Input: json.RawMessage(`{"type": "object",`)}
	w := httptest.NewRecorder()
	httpadapter.New(e).ServeHTTP(w, httptest.NewRequest("GET", "/openapi.json", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), "functions.Schema.Input") {
		t.Errorf("%d %s, want a 500 naming the bad schema", w.Code, w.Body)
	}
}

func TestOpenAPISchemaForms(t *testing.T) {
	for _, c := range []struct {
		name, input string
		want        any // components.schemas.Input
	}{
		{"any", `true`, nil},
		{"refs to the root and into it", `{"type": "object", "properties": {"a": {"type": "string"}, "b": {"$ref": "#/properties/a"}, "kids": {"type": "array", "items": {"$ref": "#"}}}}`,
			map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "string"},
				"b":    map[string]any{"$ref": "#/components/schemas/Input/properties/a"},
				"kids": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/Input"}}}}},
		{"draft-07 definitions", `{"definitions": {"x/y": {"type": "integer"}}, "$ref": "#/definitions/x~1y"}`,
			map[string]any{"$ref": "#/components/schemas/Input.x_y"}},
		{"other documents' references stay", `{"$ref": "urn:example:thing"}`, map[string]any{"$ref": "urn:example:thing"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := httpadapter.OpenAPI(adapters.Description{Name: "f", Schema: functions.Schema{Input: json.RawMessage(c.input)}}, false, false, false)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if got := at(doc, "components", "schemas", "Input"); !equalJSON(got, c.want) {
				t.Errorf("Input = %v, want %v", got, c.want)
			}
			if c.name == "any" {
				if got := at(doc, "paths", "/predict", "post", "requestBody", "content", "application/json", "schema"); got != true {
					t.Errorf("request schema = %v, want true", got)
				}
			}
		})
	}
}
