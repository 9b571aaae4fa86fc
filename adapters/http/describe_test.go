package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"sync"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// describedEngine is an engine that describes itself (adapters.Describer)
// and, with models, serves a catalogue (adapters.Catalog): what the page
// and /openapi.json are built from. Its predictions echo the request, or
// answer what answer returns.
type describedEngine struct {
	mu     sync.Mutex
	desc   adapters.Description
	ready  bool
	answer func(req *functions.Request) (*functions.Response, error)
	last   *functions.Request
}

func (e *describedEngine) Invoke(_ context.Context, req *functions.Request) (*functions.Response, error) {
	e.mu.Lock()
	e.last = req
	answer := e.answer
	e.mu.Unlock()
	if answer != nil {
		return answer(req)
	}
	return functions.JSON(http.StatusOK, map[string]any{"path": req.Path, "content_type": req.ContentType, "bytes": len(req.Body)})
}

func (e *describedEngine) Name() string   { return e.desc.Name }
func (e *describedEngine) MaxBody() int64 { return 1 << 20 }
func (e *describedEngine) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ready
}

func (e *describedEngine) Describe(context.Context) adapters.Description {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.desc
	d.Ready = e.ready
	return d
}

func (e *describedEngine) setModels(ms []oip.ModelMetadata) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.desc.Models = ms
}

// catalogEngine is a describedEngine with a model catalogue, as an ONNX
// function's runtime is.
type catalogEngine struct{ *describedEngine }

func (e catalogEngine) Models() []string {
	d := e.Describe(context.Background())
	var names []string
	for _, m := range d.Models {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	return names
}

func (e catalogEngine) CheckModel(name string) error {
	if slices.Contains(e.Models(), name) {
		return nil
	}
	return oip.ModelNotFound(name, e.Models())
}

func (e catalogEngine) DescribeModel(_ context.Context, name, _ string) (oip.ModelMetadata, error) {
	for _, m := range e.Describe(context.Background()).Models {
		if m.Name == name {
			return m, nil
		}
	}
	return oip.ModelMetadata{}, oip.ModelNotFound(name, e.Models())
}

// streamEngine streams its output in chunks.
type streamEngine struct {
	*describedEngine
	chunks []string
}

func (e streamEngine) InvokeStream(_ context.Context, _ *functions.Request, sink adapters.StreamSink) (*functions.Response, error) {
	if err := sink.Open(http.Header{"Content-Type": {"text/plain"}}); err != nil {
		return nil, err
	}
	for _, c := range e.chunks {
		if err := sink.Send([]byte(c)); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// orderSchema is the input schema of a typed function taking an order:
// nested structs in $defs, a slice of them, enums, bounds, an optional
// nullable field, as a reflection library writes one for Go types.
const orderSchema = `{
 "$schema": "https://json-schema.org/draft/2020-12/schema",
 "$id": "urn:cortex:test:order",
 "$ref": "#/$defs/Order",
 "$defs": {
  "Order": {"type": "object", "required": ["customer", "items"], "additionalProperties": false, "properties": {
   "customer": {"$ref": "#/$defs/Customer"},
   "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Item"}},
   "priority": {"type": "string", "enum": ["low", "normal", "high"], "default": "normal"},
   "gift": {"type": "boolean"},
   "tags": {"type": "array", "items": {"type": "string"}},
   "note": {"type": ["string", "null"], "maxLength": 500}
  }},
  "Customer": {"type": "object", "required": ["name"], "properties": {
   "name": {"type": "string", "minLength": 1, "description": "Who orders."},
   "age": {"type": "integer", "minimum": 0, "maximum": 150}
  }},
  "Item": {"type": "object", "required": ["sku", "qty"], "properties": {
   "sku": {"type": "string"},
   "qty": {"type": "integer", "minimum": 1},
   "price": {"type": "number", "exclusiveMinimum": 0}
  }}
 }
}`

const receiptSchema = `{"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}, "lines": {"type": "integer"}}}`

func typedEngine() *describedEngine {
	return &describedEngine{ready: true, desc: adapters.Description{
		Name: "orders", Version: "v0.3.0", Digest: "sha256:0123456789abcdef",
		Schema: functions.Schema{Input: json.RawMessage(orderSchema), Output: json.RawMessage(receiptSchema)},
	}}
}

func imageEngine() *describedEngine {
	return &describedEngine{ready: true, desc: adapters.Description{
		Name: "ocr", Version: "v0.3.0",
		Schema: functions.Schema{
			Input:           json.RawMessage(`{"type": "object", "required": ["image"], "properties": {"image": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}}}`),
			Output:          json.RawMessage(`{"type": "object", "properties": {"lines": {"type": "array", "items": {"type": "object", "properties": {"text": {"type": "string"}}}}}}`),
			InputMediaTypes: []string{"image/png", "image/jpeg"},
		},
	}}
}

func thumbnailEngine() *describedEngine {
	return &describedEngine{ready: true, desc: adapters.Description{
		Name: "thumbnail", Version: "v0.3.0",
		Schema: functions.Schema{InputMediaTypes: []string{"image/*"}, OutputMediaTypes: []string{"image/png"}},
	}}
}

func streamingEngine() streamEngine {
	return streamEngine{describedEngine: &describedEngine{ready: true, desc: adapters.Description{
		Name: "textgen", Version: "v0.3.0", Streams: true,
		Schema: functions.Schema{Input: json.RawMessage(`{"type": "object", "required": ["prompt"], "properties": {
			"prompt": {"type": "string"}, "max_tokens": {"type": "integer", "minimum": 1, "maximum": 512}, "stream": {"type": "boolean"}}}`)},
	}}, chunks: []string{"In the ", "beginning"}}
}

var irisMetadata = oip.ModelMetadata{
	Name: "iris", Versions: []string{"1"}, Platform: "onnxruntime_onnx",
	Inputs:  []oip.TensorMetadata{{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 4}}},
	Outputs: []oip.TensorMetadata{{Name: "label", Datatype: oip.INT64, Shape: []int64{-1}}, {Name: "probabilities", Datatype: oip.FP32, Shape: []int64{-1, 3}}},
}

func onnxEngine() catalogEngine {
	return catalogEngine{&describedEngine{ready: true, desc: adapters.Description{
		Name: "iris", Version: "v0.3.0", Digest: "sha256:feedface",
		Models: []oip.ModelMetadata{irisMetadata},
		// As the onnx predictor publishes it: its own route takes the
		// model's OIP request.
		Schema: functions.Schema{Input: oip.RequestSchema(irisMetadata), Output: oip.ResponseSchema(irisMetadata)},
	}}}
}

var (
	_ adapters.Describer    = (*describedEngine)(nil)
	_ adapters.Catalog      = catalogEngine{}
	_ adapters.StreamEngine = streamEngine{}
)
