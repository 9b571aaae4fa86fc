package openapicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/schema_validation"
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
// specification, builds its model (every reference resolved), and
// compiles every schema in it as JSON Schema 2020-12.
func TestDocumentsAreValid(t *testing.T) {
	for _, f := range functionsUnderTest(t) {
		for _, pages := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s pages=%v", f.name, pages), func(t *testing.T) {
				spec, err := httpadapter.OpenAPI(f.desc, pages, true, f.catalog)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := libopenapi.NewDocument(spec)
				if err != nil {
					t.Fatalf("libopenapi cannot read the document: %v", err)
				}
				if v := doc.GetVersion(); v != "3.1.0" {
					t.Errorf("version = %q, want 3.1.0", v)
				}
				ok, errs := schema_validation.ValidateOpenAPIDocument(doc)
				if !ok {
					for _, e := range errs {
						t.Errorf("invalid OpenAPI 3.1: %s: %s (%s)", e.Message, e.Reason, e.Context)
						for _, se := range e.SchemaValidationErrors {
							t.Errorf("  at %s: %s", se.KeywordLocation+" "+se.FieldPath, se.Reason)
						}
					}
				}
				model, err := doc.BuildV3Model()
				if err != nil {
					t.Fatalf("building the model (resolving references): %v", err)
				}
				if got := model.Model.Info.Title; got != f.desc.Name {
					t.Errorf("info.title = %q, want %q", got, f.desc.Name)
				}
				compileSchemas(t, spec)
			})
		}
	}
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
			doc, err := libopenapi.NewDocument(dw.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			v, errs := validator.NewValidator(doc)
			if len(errs) > 0 {
				t.Fatalf("validator: %v", errs)
			}
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
			// The validator reads the bodies: give it fresh ones.
			vreq := httptest.NewRequest(c.method, "http://function.test"+c.path, bytes.NewReader(c.body))
			vreq.Header = req.Header.Clone()
			body, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(body))
			check := v.ValidateHttpRequestResponse
			if c.badRequest {
				check = v.ValidateHttpResponse
			}
			if ok, errs := check(vreq, resp); !ok {
				for _, e := range errs {
					t.Errorf("%s %s -> %d: %s: %s", c.method, c.path, resp.StatusCode, e.Message, e.Reason)
					for _, se := range e.SchemaValidationErrors {
						t.Errorf("  at %s: %s", se.KeywordLocation+" "+se.FieldPath, se.Reason)
					}
				}
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
	doc, err := libopenapi.NewDocument(dw.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	v, verrs := validator.NewValidator(doc)
	if len(verrs) > 0 {
		t.Fatal(verrs)
	}
	body := `{"customer": {"name": "Ada"}, "items": [{"sku": "A1", "qty": 2}], "priority": "urgent"}`
	req := httptest.NewRequest("POST", "http://function.test/predict", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	vreq := httptest.NewRequest("POST", "http://function.test/predict", strings.NewReader(body))
	vreq.Header = req.Header.Clone()
	ok, errs := v.ValidateHttpRequestResponse(vreq, w.Result())
	if ok {
		t.Fatal("a request with an unknown enum value and an answer with a string total passed")
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Message+" "+e.Reason)
	}
	if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(strings.ToLower(m), "request") }) ||
		!slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(strings.ToLower(m), "response") }) {
		t.Errorf("want a request and a response error, got %q", msgs)
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
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	v, verrs := validator.NewValidator(doc)
	if len(verrs) > 0 {
		t.Fatal(verrs)
	}
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
		ok, errs := v.ValidateHttpRequest(req)
		if ok != c.ok {
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Message+": "+e.Reason)
			}
			t.Errorf("%s: valid = %v, want %v %q", c.name, ok, c.ok, msgs)
		}
	}
}
