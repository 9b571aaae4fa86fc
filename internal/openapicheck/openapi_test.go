package openapicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cortexfn/cortex/adapters"
	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// A typed function's input and output: nested structs, a slice of them,
// an enum, bounds, optional fields.
type (
	Order struct {
		Customer Customer `json:"customer"`
		Items    []Item   `json:"items" jsonschema:"minItems=1"`
		Priority string   `json:"priority,omitempty" jsonschema:"enum=low,enum=normal,enum=high"`
		Gift     bool     `json:"gift,omitempty"`
		Note     *string  `json:"note,omitempty"`
	}
	Customer struct {
		Name string `json:"name" jsonschema:"minLength=1,description=Who orders."`
		Age  int    `json:"age,omitempty" jsonschema:"minimum=0,maximum=150"`
	}
	Item struct {
		SKU   string  `json:"sku"`
		Qty   int     `json:"qty" jsonschema:"minimum=1"`
		Price float64 `json:"price,omitempty"`
	}
	Receipt struct {
		Total float64 `json:"total"`
		Lines int     `json:"lines"`
	}
)

// orderSchema is the input schema written by hand the way a reflection
// library writes one: used when functions.Typed publishes none.
const orderSchema = `{
 "$schema": "https://json-schema.org/draft/2020-12/schema",
 "$ref": "#/$defs/Order",
 "$defs": {
  "Order": {"type": "object", "required": ["customer", "items"], "additionalProperties": false, "properties": {
   "customer": {"$ref": "#/$defs/Customer"},
   "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Item"}},
   "priority": {"type": "string", "enum": ["low", "normal", "high"]},
   "gift": {"type": "boolean"},
   "note": {"type": ["string", "null"]}
  }},
  "Customer": {"type": "object", "required": ["name"], "properties": {
   "name": {"type": "string", "minLength": 1, "description": "Who orders."},
   "age": {"type": "integer", "minimum": 0, "maximum": 150}
  }},
  "Item": {"type": "object", "required": ["sku", "qty"], "properties": {
   "sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}, "price": {"type": "number"}
  }}
 }
}`

// typedSchema is the Schema functions.Typed publishes for an order
// function.
func typedSchema(t testing.TB) functions.Schema {
	p := functions.Typed(func(_ context.Context, o Order) (Receipt, error) {
		return Receipt{Total: 3.5, Lines: len(o.Items)}, nil
	})
	s := functions.SchemaOf(p)
	if s.Input == nil || s.Output == nil {
		t.Fatalf("functions.Typed published no schema for Order and Receipt: %+v", s)
	}
	return s
}

// defsSchema is an order schema with its types in $defs, as reflection
// libraries write them when they do not inline.
func defsSchema() functions.Schema {
	return functions.Schema{Input: json.RawMessage(orderSchema),
		Output: json.RawMessage(`{"type": "object", "required": ["total", "lines"], "properties": {"total": {"type": "number"}, "lines": {"type": "integer"}}}`)}
}

// treeSchema refers to itself: a node's children are nodes.
const treeSchema = `{"$id": "urn:example:tree", "type": "object", "required": ["label"], "properties": {
 "label": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}}}`

var irisMetadata = oip.ModelMetadata{
	Name: "iris", Versions: []string{"1"}, Platform: "onnxruntime_onnx",
	Inputs: []oip.TensorMetadata{{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 4}}},
	Outputs: []oip.TensorMetadata{{Name: "label", Datatype: oip.INT64, Shape: []int64{-1}},
		{Name: "probabilities", Datatype: oip.FP32, Shape: []int64{-1, 3}}},
}

type function struct {
	name    string
	desc    adapters.Description
	catalog bool
}

func functionsUnderTest(t testing.TB) []function {
	return []function{
		{name: "typed", desc: adapters.Description{Name: "orders", Version: "v0.3.0", Digest: "sha256:0123", Schema: typedSchema(t)}},
		{name: "typed with auth", desc: adapters.Description{Name: "orders", Version: "v0.3.0", Schema: typedSchema(t), Auth: true}},
		{name: "schema with defs", desc: adapters.Description{Name: "orders", Version: "v0.3.0", Schema: defsSchema()}},
		{name: "recursive schema", desc: adapters.Description{Name: "trees", Schema: functions.Schema{Input: json.RawMessage(treeSchema)}}},
		{name: "onnx", catalog: true, desc: adapters.Description{Name: "iris", Version: "v0.3.0", Models: []oip.ModelMetadata{irisMetadata}}},
		{name: "streaming", desc: adapters.Description{Name: "textgen", Version: "v0.3.0", Streams: true, Schema: functions.Schema{
			Input: json.RawMessage(`{"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}, "max_tokens": {"type": "integer", "minimum": 1}}}`)}}},
		{name: "image input", desc: adapters.Description{Name: "ocr", Version: "v0.3.0", Schema: functions.Schema{
			Input:           json.RawMessage(`{"type": "object", "required": ["image"], "properties": {"image": {"type": "string", "contentEncoding": "base64"}}}`),
			InputMediaTypes: []string{"image/png", "image/jpeg"}, OutputMediaTypes: []string{"image/png"}}}},
		{name: "no schema", desc: adapters.Description{Name: "echo"}},
		{name: "async typed with auth", desc: adapters.Description{Name: "orders", Version: "v0.3.0", Schema: typedSchema(t), Auth: true, Async: true}},
		{name: "async onnx", catalog: true, desc: adapters.Description{Name: "iris", Version: "v0.3.0", Models: []oip.ModelMetadata{irisMetadata}, Async: true}},
	}
}

// TestDocumentsAreValid validates every document against the OpenAPI 3.1
// specification twice, with kin-openapi (every reference resolved, unknown
// fields refused) and against the specification's published JSON Schema,
// and compiles every schema in it as JSON Schema 2020-12.
func TestDocumentsAreValid(t *testing.T) {
	for _, f := range functionsUnderTest(t) {
		for _, pages := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s pages=%v", f.name, pages), func(t *testing.T) {
				spec, err := httpadapter.OpenAPI(f.desc, pages, true, f.catalog)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := validateDocument(spec)
				if err != nil {
					t.Fatal(err)
				}
				if v := doc.OpenAPI; v != "3.1.0" {
					t.Errorf("version = %q, want 3.1.0", v)
				}
				if doc.Info == nil || doc.Info.Title != f.desc.Name {
					t.Errorf("info = %+v, want the title %q", doc.Info, f.desc.Name)
				}
				if err := validateAgainstSpecSchema(spec); err != nil {
					t.Error(err)
				}
				compileSchemas(t, spec)
			})
		}
	}
}

// TestBrokenDocumentsAreRefused makes sure both document checks can fail:
// a served document, broken one way at a time, is refused by kin-openapi,
// and by the specification's schema where the break is the schema's
// business (a reference's target is not).
func TestBrokenDocumentsAreRefused(t *testing.T) {
	desc := adapters.Description{Name: "orders", Version: "v0.3.0", Schema: typedSchema(t), Auth: true}
	for _, c := range []struct {
		name       string
		breakIt    func(doc map[string]any)
		specSchema bool // the published schema refuses it too
	}{
		{"a misspelled operation field", func(doc map[string]any) {
			op := object(doc, "paths", "/predict", "post")
			op["sumary"] = op["summary"]
			delete(op, "summary")
		}, true},
		{"a misspelled top-level field", func(doc map[string]any) {
			doc["extrnalDocs"] = map[string]any{"url": "https://example.com/docs"}
		}, true},
		{"info without its version", func(doc map[string]any) {
			delete(object(doc, "info"), "version")
		}, true},
		{"an OpenAPI 2 body parameter", func(doc map[string]any) {
			object(doc, "paths", "/predict", "post")["parameters"] = []any{
				map[string]any{"name": "order", "in": "body", "schema": map[string]any{"type": "object"}}}
		}, true},
		{"a reference to nothing", func(doc map[string]any) {
			object(doc, "paths", "/predict", "post", "responses")["404"] = map[string]any{"$ref": "#/components/responses/Missing"}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := httpadapter.OpenAPI(desc, true, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := validateDocument(spec); err != nil {
				t.Fatalf("the document is refused before it is broken: %v", err)
			}
			if err := validateAgainstSpecSchema(spec); err != nil {
				t.Fatalf("the document breaks the schema before it is broken: %v", err)
			}
			var doc map[string]any
			if err := json.Unmarshal(spec, &doc); err != nil {
				t.Fatal(err)
			}
			c.breakIt(doc)
			if spec, err = json.Marshal(doc); err != nil {
				t.Fatal(err)
			}
			if _, err := validateDocument(spec); err == nil {
				t.Error("kin-openapi accepted it")
			} else {
				t.Logf("kin-openapi: %v", err)
			}
			if !c.specSchema {
				return
			}
			if err := validateAgainstSpecSchema(spec); err == nil {
				t.Error("the OpenAPI 3.1 schema accepted it")
			} else {
				t.Logf("schema: %v", err)
			}
		})
	}
}

// object walks doc down keys; it panics, failing the test, if a step is
// not an object (the document changed: update the broken documents).
func object(doc map[string]any, keys ...string) map[string]any {
	m := doc
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			panic(fmt.Sprintf("the document has no object at %q (at %q): update the broken documents", keys, k))
		}
		m = next
	}
	return m
}

// validateDocument reads spec with kin-openapi, which resolves every
// reference, and validates it as OpenAPI 3.1 with its schemas as JSON
// Schema 2020-12. Fields the specification does not define (other than
// x- extensions) are refused: kin-openapi does unless told to allow them
// (openapi3.AllowExtraSiblingFields), and TestBrokenDocumentsAreRefused
// holds it to that.
func validateDocument(spec []byte) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("kin-openapi cannot read the document or resolve its references: %w", err)
	}
	if err := doc.Validate(context.Background(), openapi3.IsOpenAPI31OrLater(), openapi3.EnableMultiError()); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI 3.1 (kin-openapi): %w", err)
	}
	return doc, nil
}

// oas31SchemaID is the $id of testdata/oas31-schema.json, the OpenAPI 3.1
// specification's published schema (see testdata/README.md).
const oas31SchemaID = "https://spec.openapis.org/oas/3.1/schema/2022-10-07"

var oas31Schema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open("testdata/oas31-schema.json")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	// Formats are only annotations in 2020-12: assert them, as the
	// schema's uri and uri-reference fields mean them.
	c.AssertFormat()
	if err := c.AddResource(oas31SchemaID, doc); err != nil {
		return nil, err
	}
	return c.Compile(oas31SchemaID)
})

// validateAgainstSpecSchema validates spec against the OpenAPI 3.1
// specification's published schema.
func validateAgainstSpecSchema(spec []byte) error {
	s, err := oas31Schema()
	if err != nil {
		return fmt.Errorf("compiling testdata/oas31-schema.json (%s): %w", oas31SchemaID, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec))
	if err != nil {
		return err
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("the document breaks the OpenAPI 3.1 schema (%s): %w", oas31SchemaID, err)
	}
	return nil
}

// compileSchemas compiles every schema of components/schemas, and the
// request and answer schemas of every operation, in the document as one
// JSON Schema 2020-12 resource: what resolves there resolves for any
// JSON Schema tool.
func compileSchemas(t *testing.T, spec []byte) map[string]*jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	const loc = "urn:cortex:openapi"
	if err := c.AddResource(loc, doc); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(spec, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]*jsonschema.Schema{}
	for name := range m.Components.Schemas {
		s, err := c.Compile(loc + "#/components/schemas/" + strings.ReplaceAll(name, "~", "~0"))
		if err != nil {
			t.Errorf("schema %s is not valid JSON Schema 2020-12: %v", name, err)
			continue
		}
		out[name] = s
	}
	return out
}

// TestTypedSchemaHoldsBodies checks that the document's input schema of
// the typed function takes a good order and refuses bad ones, the way
// the function does.
func TestTypedSchemaHoldsBodies(t *testing.T) {
	for name, s := range map[string]functions.Schema{"typed": typedSchema(t), "defs": defsSchema()} {
		t.Run(name, func(t *testing.T) { holdsOrders(t, s) })
	}
}

func holdsOrders(t *testing.T, s functions.Schema) {
	spec, err := httpadapter.OpenAPI(adapters.Description{Name: "orders", Schema: s}, true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	schemas := compileSchemas(t, spec)
	in := schemas["Input"]
	if in == nil {
		t.Fatal("no Input schema in components")
	}
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"customer": {"name": "Ada"}, "items": [{"sku": "A1", "qty": 2}], "priority": "high"}`, true},
		{`{"customer": {"name": "Ada", "age": 36}, "items": [{"sku": "A1", "qty": 1, "price": 2.5}], "note": "ring twice"}`, true},
		{`{"customer": {"name": "Ada"}, "items": [{"sku": "A1", "qty": 0}]}`, false},
		{`{"customer": {"name": "Ada"}, "items": [{"sku": "A1", "qty": 1}], "priority": "urgent"}`, false},
		{`{"customer": {}, "items": [{"sku": "A1", "qty": 1}]}`, false},
		{`{"customer": {"name": "Ada"}, "items": []}`, false},
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Validate(v); (err == nil) != c.ok {
			t.Errorf("%s: valid = %v, want %v (%v)", c.body, err == nil, c.ok, err)
		}
	}
}

// engine answers as the function it describes would.
type engine struct {
	desc   adapters.Description
	answer func(req *functions.Request) (*functions.Response, error)
}

func (e *engine) Invoke(_ context.Context, req *functions.Request) (*functions.Response, error) {
	return e.answer(req)
}
func (e *engine) Name() string   { return e.desc.Name }
func (e *engine) MaxBody() int64 { return 1 << 20 }
func (e *engine) Ready() bool    { return true }
func (e *engine) Describe(context.Context) adapters.Description {
	d := e.desc
	d.Ready = true
	return d
}

type catalogEngine struct{ *engine }

func (e catalogEngine) Models() []string { return []string{"iris"} }
func (e catalogEngine) CheckModel(name string) error {
	if name != "iris" {
		return oip.ModelNotFound(name, e.Models())
	}
	return nil
}
func (e catalogEngine) DescribeModel(_ context.Context, name, _ string) (oip.ModelMetadata, error) {
	if err := e.CheckModel(name); err != nil {
		return oip.ModelMetadata{}, err
	}
	return irisMetadata, nil
}

func init() {
	// The carrier's pages (text/html) and raw image bodies are not JSON,
	// and kin-openapi has no decoder for them: it would refuse them as an
	// unsupported content type. The document describes them as strings
	// ({"type": "string", "contentMediaType": ...}), so read them as one and
	// let their schema check that. Any other media type still fails.
	for _, ct := range []string{"text/html", "image/png", "image/jpeg"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
}

// documentURL is where the tests' requests find the document: the base of
// its relative server URL (".").
const documentURL = "http://function.test/openapi.json"

// exchangeOptions hold requests and answers to the document as strictly as
// kin-openapi can: every error (MultiError), an answer's status must be
// documented, a request may carry no body where the document declares none,
// and defaults are not written into the request checked.
var exchangeOptions = &openapi3filter.Options{
	MultiError:                        true,
	IncludeResponseStatus:             true,
	RejectWhenRequestBodyNotSpecified: true,
	SkipSettingDefaults:               true,
}

// exchangeChecker validates requests and answers against a document.
//
// It routes with routers/gorillamux rather than routers/legacy: it tries
// paths without variables first (a model's own /v2/models/iris/infer
// before /v2/models/{model_name}/infer, which would check the request
// against the protocol only) and matches a variable followed by a literal
// in one segment (/v1/models/{model_name}:predict).
type exchangeChecker struct{ router routers.Router }

func newExchangeChecker(t testing.TB, spec []byte) *exchangeChecker {
	t.Helper()
	doc, err := validateDocument(spec) // the routers assume a valid document
	if err != nil {
		t.Fatal(err)
	}
	// The server URL is relative to where the document is served, as a
	// client reads it: resolve it so the router matches the requests' host.
	base, err := url.Parse(documentURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Servers {
		u, err := base.Parse(s.URL)
		if err != nil {
			t.Fatalf("server URL %q: %v", s.URL, err)
		}
		s.URL = u.String()
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &exchangeChecker{router: router}
}

// route finds req's operation in the document: a request with none fails
// the test.
func (c *exchangeChecker) route(t testing.TB, req *http.Request) *openapi3filter.RequestValidationInput {
	t.Helper()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s has no operation in the document: %v", req.Method, req.URL.Path, err)
	}
	return &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: exchangeOptions}
}

// response validates an answer to the request in.
func (c *exchangeChecker) response(in *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) error {
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: exchangeOptions}
	out.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// TestExchangesMatchTheDocument sends real requests to the HTTP carrier
// and validates each request and its answer against the document the
// same carrier serves.
func TestExchangesMatchTheDocument(t *testing.T) {
	orders := &engine{desc: adapters.Description{Name: "orders", Version: "v0.3.0", Schema: typedSchema(t)},
		answer: func(req *functions.Request) (*functions.Response, error) {
			var o Order
			if err := functions.DecodeJSON(req.Body, &o); err != nil {
				return nil, err
			}
			if len(o.Items) == 0 {
				return nil, functions.Unprocessable("request body does not match the input schema",
					[]functions.FieldError{{Path: "$.items", Message: "want at least 1 item, got 0"}})
			}
			return functions.JSON(http.StatusOK, Receipt{Total: 3.5, Lines: len(o.Items)})
		}}
	iris := catalogEngine{&engine{desc: adapters.Description{Name: "iris", Version: "v0.3.0", Models: []oip.ModelMetadata{irisMetadata}},
		answer: func(req *functions.Request) (*functions.Response, error) {
			r, err := oip.DecodeRequest(req.Body)
			if err != nil {
				return nil, err
			}
			return functions.JSON(http.StatusOK, &oip.InferenceResponse{ModelName: "iris", ID: r.ID, Outputs: []oip.ResponseOutput{
				oip.NewOutput("label", []int64{1}, []int64{0}),
				oip.NewOutput("probabilities", []int64{1, 3}, []float32{0.9, 0.05, 0.05}),
			}})
		}}}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	ocr := &engine{desc: adapters.Description{Name: "ocr", Version: "v0.3.0", Schema: functions.Schema{
		Output:          json.RawMessage(`{"type": "object", "required": ["lines"], "properties": {"lines": {"type": "array", "items": {"type": "string"}}}}`),
		InputMediaTypes: []string{"image/png"}}},
		answer: func(req *functions.Request) (*functions.Response, error) {
			if req.ContentType != "image/png" {
				return nil, functions.Errorf(http.StatusBadRequest, "send a PNG")
			}
			return functions.JSON(http.StatusOK, map[string]any{"lines": []string{"INVOICE 20931"}})
		}}

	for _, c := range []struct {
		name, method, path, contentType string
		e                               adapters.Engine
		body                            []byte
		status                          int
		badRequest                      bool // only the answer is checked
	}{
		{"typed prediction", "POST", "/predict", "application/json", orders, []byte(`{"customer": {"name": "Ada"}, "items": [{"sku": "A1", "qty": 2}]}`), 200, false},
		{"typed prediction on /", "POST", "/", "application/json", orders, []byte(`{"customer": {"name": "Ada"}, "items": [{"sku": "A1", "qty": 2}]}`), 200, false},
		{"malformed body", "POST", "/predict", "application/json", orders, []byte(`{"customer": `), 400, true},
		{"oip inference", "POST", "/v2/models/iris/infer", "application/json", iris,
			[]byte(`{"id": "r1", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}`), 200, false},
		{"model metadata", "GET", "/v2/models/iris", "", iris, nil, 200, false},
		{"model index", "GET", "/v2/models", "", iris, nil, 200, false},
		{"v1 index", "GET", "/v1/models", "", iris, nil, 200, false},
		{"unknown model", "GET", "/v2/models/rose", "", iris, nil, 404, true},
		{"model ready", "GET", "/v2/models/iris/ready", "", iris, nil, 200, false},
		{"server metadata", "GET", "/v2", "", iris, nil, 200, false},
		{"readiness", "GET", "/readyz", "", iris, nil, 200, false},
		{"liveness", "GET", "/healthz", "", iris, nil, 200, false},
		{"image body", "POST", "/predict", "image/png", ocr, png, 200, false},
		{"page", "GET", "/", "", orders, nil, 200, false},
		{"docs", "GET", "/docs", "", orders, nil, 200, false},
		{"document", "GET", "/openapi.json", "", orders, nil, 200, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := httpadapter.New(c.e, httpadapter.WithoutCompression())
			docReq := httptest.NewRequest("GET", "/openapi.json", nil)
			dw := httptest.NewRecorder()
			h.ServeHTTP(dw, docReq)
			check := newExchangeChecker(t, dw.Body.Bytes())
			req := httptest.NewRequest(c.method, "http://function.test"+c.path, bytes.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			resp := w.Result()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, w.Body)
			}
			// The validator reads the body: give it a fresh request.
			vreq := httptest.NewRequest(c.method, "http://function.test"+c.path, bytes.NewReader(c.body))
			vreq.Header = req.Header.Clone()
			in := check.route(t, vreq)
			if !c.badRequest {
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Errorf("%s %s: the request breaks the document: %v", c.method, c.path, err)
				}
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if err := check.response(in, resp, body); err != nil {
				t.Errorf("%s %s -> %d: the answer breaks the document: %v", c.method, c.path, resp.StatusCode, err)
				t.Logf("answer: %s", body)
			}
		})
	}
}

// TestBadExchangesAreCaught makes sure the exchange check can fail: an
// answer that breaks the document is reported.
func TestBadExchangesAreCaught(t *testing.T) {
	e := &engine{desc: adapters.Description{Name: "orders", Schema: typedSchema(t)},
		answer: func(*functions.Request) (*functions.Response, error) {
			return functions.JSON(http.StatusOK, map[string]any{"total": "not a number"})
		}}
	h := httpadapter.New(e, httpadapter.WithoutCompression())
	dw := httptest.NewRecorder()
	h.ServeHTTP(dw, httptest.NewRequest("GET", "/openapi.json", nil))
	check := newExchangeChecker(t, dw.Body.Bytes())
	body := `{"customer": {"name": "Ada"}, "items": [{"sku": "A1", "qty": 2}], "priority": "urgent"}`
	req := httptest.NewRequest("POST", "http://function.test/predict", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200 (the engine's bad answer): %s", w.Code, w.Body)
	}
	vreq := httptest.NewRequest("POST", "http://function.test/predict", strings.NewReader(body))
	vreq.Header = req.Header.Clone()
	in := check.route(t, vreq)
	// kin-openapi checks a request and its answer in two calls: each must
	// fail, with its own kind of error, for the field that breaks it.
	var reqErr *openapi3filter.RequestError
	if err := openapi3filter.ValidateRequest(context.Background(), in); !errors.As(err, &reqErr) {
		t.Errorf("a request with priority \"urgent\" (not in the enum): want a request error, got %v", err)
	} else if !strings.Contains(err.Error(), "priority") {
		t.Errorf("the request error does not name the priority: %v", err)
	}
	var respErr *openapi3filter.ResponseError
	if err := check.response(in, w.Result(), w.Body.Bytes()); !errors.As(err, &respErr) {
		t.Errorf("an answer with a string total: want a response error, got %v", err)
	} else if !strings.Contains(err.Error(), "total") {
		t.Errorf("the response error does not name the total: %v", err)
	}
}

// TestRecursiveSchema checks that a schema referring to itself ("#")
// still does once it is in the document.
func TestRecursiveSchema(t *testing.T) {
	spec, err := httpadapter.OpenAPI(adapters.Description{Name: "trees", Schema: functions.Schema{Input: json.RawMessage(treeSchema)}}, false, false, false)
	if err != nil {
		t.Fatal(err)
	}
	in := compileSchemas(t, spec)["Input"]
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"label": "a", "children": [{"label": "b", "children": [{"label": "c"}]}]}`, true},
		{`{"label": "a", "children": [{"label": "b", "children": [{"name": "c"}]}]}`, false},
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(c.body))
		if err := in.Validate(v); (err == nil) != c.ok {
			t.Errorf("%s: valid = %v, want %v (%v)", c.body, err == nil, c.ok, err)
		}
	}
}

// TestModelRequestsAreChecked checks that an inference request is held to
// its model's tensors (the model's own route in the document), not only to
// the protocol's shape.
func TestModelRequestsAreChecked(t *testing.T) {
	spec, err := httpadapter.OpenAPI(adapters.Description{Name: "iris", Models: []oip.ModelMetadata{irisMetadata}}, false, false, true)
	if err != nil {
		t.Fatal(err)
	}
	check := newExchangeChecker(t, spec)
	for _, c := range []struct {
		name, body string
		ok         bool
	}{
		{"the model's tensor", `{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6, 7, 8]}]}`, true},
		{"nested by rows", `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [[1, 2, 3, 4]]}]}`, true},
		{"a row too short", `{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}`, false},
		{"another tensor", `{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`, false},
		{"a string element", `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, "x"]}]}`, false},
	} {
		req := httptest.NewRequest("POST", "http://function.test/v2/models/iris/infer", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		in := check.route(t, req)
		if in.Route.Path != "/v2/models/iris/infer" {
			t.Fatalf("routed to %s, want the model's own /v2/models/iris/infer", in.Route.Path)
		}
		err := openapi3filter.ValidateRequest(context.Background(), in)
		if (err == nil) != c.ok {
			t.Errorf("%s: valid = %v, want %v (%v)", c.name, err == nil, c.ok, err)
		}
	}
}
