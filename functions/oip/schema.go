package oip

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// RequestSchema returns the JSON Schema (draft 2020-12) of an inference
// request (POST /v2/models/{name}/infer) for the model md describes: the
// function's OpenAPI document and its page are built from it. It is
// self-contained (no $ref) and reads as a form:
//
//   - "inputs" is an array of tensor objects, one per model input. With
//     one input its items are that tensor's schema; with several, items
//     is a oneOf of them (each told apart by its name's const) and an
//     allOf of "contains" requires each once.
//   - A tensor's "name" and "datatype" are consts; its "shape" has the
//     model's rank, each fixed dimension a const and each -1 any size;
//     its "data" holds elements of the datatype (BOOL a boolean, the
//     integer types an integer within their range, FP16 to FP64 a
//     number, BYTES a string), flat or, for a tensor of rank 2 or more,
//     nested by rows.
//   - "outputs", optional, names outputs to answer with, from the
//     model's.
//
// Tensors the metadata gives without a datatype or shape take any. What
// the schema cannot say (the data fills the shape; each input once) the
// server checks: see CheckRequest and DecodeRequest.
func RequestSchema(md ModelMetadata) json.RawMessage {
	var items any
	var allOf []any
	switch len(md.Inputs) {
	case 0:
		items = tensorSchema(TensorMetadata{}, "input", false)
	case 1:
		items = tensorSchema(md.Inputs[0], "input", false)
	default:
		alts := make([]any, len(md.Inputs))
		for i, t := range md.Inputs {
			alts[i] = tensorSchema(t, "input", false)
			allOf = append(allOf, object{
				{"contains", object{
					{"properties", object{{"name", object{{"const", t.Name}}}}},
					{"required", []string{"name"}},
				}},
			})
		}
		items = object{{"oneOf", alts}}
	}
	inputs := object{
		{"type", "array"},
		{"description", fmt.Sprintf("The input tensors of model %q, each once, in any order.", md.Name)},
		{"items", items},
	}
	if n := len(md.Inputs); n > 0 {
		inputs = append(inputs, member{"minItems", n}, member{"maxItems", n})
	}
	if allOf != nil {
		inputs = append(inputs, member{"allOf", allOf})
	}
	outName := object{{"type", "string"}}
	if len(md.Outputs) > 0 {
		outName = object{{"enum", tensorNames(md.Outputs)}}
	}
	return marshal(object{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"title", fmt.Sprintf("Inference request for model %q", md.Name)},
		{"type", "object"},
		{"properties", object{
			{"id", object{{"type", "string"}, {"description", "An id of the caller's choosing, returned in the response."}}},
			{"parameters", parameters},
			{"inputs", inputs},
			{"outputs", object{
				{"type", "array"},
				{"description", "The outputs to answer with; all of them when left out."},
				{"items", object{
					{"type", "object"},
					{"properties", object{{"name", outName}, {"parameters", parameters}}},
					{"required", []string{"name"}},
					{"additionalProperties", false},
				}},
			}},
		}},
		{"required", []string{"inputs"}},
		{"additionalProperties", false},
	})
}

// ResponseSchema returns the JSON Schema (draft 2020-12) of a successful
// inference response from the model md describes: its outputs, each a
// tensor of the model's (the data flat, in row-major order; a
// floating-point element that is NaN or infinite is null).
func ResponseSchema(md ModelMetadata) json.RawMessage {
	var items any
	switch len(md.Outputs) {
	case 0:
		items = tensorSchema(TensorMetadata{}, "output", true)
	case 1:
		items = tensorSchema(md.Outputs[0], "output", true)
	default:
		alts := make([]any, len(md.Outputs))
		for i, t := range md.Outputs {
			alts[i] = tensorSchema(t, "output", true)
		}
		items = object{{"oneOf", alts}}
	}
	return marshal(object{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"title", fmt.Sprintf("Inference response of model %q", md.Name)},
		{"type", "object"},
		{"properties", object{
			{"model_name", object{{"type", "string"}}},
			{"model_version", object{{"type", "string"}}},
			{"id", object{{"type", "string"}}},
			{"parameters", parameters},
			{"outputs", object{{"type", "array"}, {"items", items}}},
		}},
		{"required", []string{"model_name", "outputs"}},
	})
}

var parameters = object{{"type", "object"}, {"description", "Free-form parameters."}}

// tensorSchema is the schema of one tensor object of a request (kind
// "input") or a response (kind "output").
func tensorSchema(t TensorMetadata, kind string, response bool) object {
	name := object{{"type", "string"}}
	if t.Name != "" {
		name = object{{"const", t.Name}}
	}
	datatype := object{{"enum", datatypes}}
	if t.Datatype != "" {
		datatype = object{{"const", t.Datatype}}
	}
	shape := object{{"type", "array"}, {"items", dimension}}
	if t.Shape != nil {
		prefix := make([]any, len(t.Shape))
		for i, d := range t.Shape {
			prefix[i] = dimension
			if d >= 0 {
				prefix[i] = object{{"const", d}}
			}
		}
		shape = append(shape,
			member{"prefixItems", prefix},
			member{"minItems", len(t.Shape)},
			member{"maxItems", len(t.Shape)},
			member{"description", fmt.Sprintf("The model's shape is %s; -1 takes any size.", dims(t.Shape))})
	}
	elem := element(t.Datatype, response)
	data := object{{"type", "array"}}
	rank := len(t.Shape)
	switch {
	case response || rank < 2:
		data = append(data, member{"items", elem},
			member{"description", "The elements, in row-major order."})
	default:
		// Flat, or nested by rows: an element, or an array of depth 1
		// to rank-1 of them.
		alts := []any{elem}
		nested := elem
		for range rank - 1 {
			nested = object{{"type", "array"}, {"items", nested}}
			alts = append(alts, nested)
		}
		data = append(data, member{"items", object{{"anyOf", alts}}},
			member{"description", "The elements in row-major order: flat, or nested by rows."})
	}
	description := fmt.Sprintf("An %s tensor.", kind)
	if t.Name != "" {
		dt, sh := string(t.Datatype), "any shape"
		if dt == "" {
			dt = "any datatype"
		}
		if t.Shape != nil {
			sh = "shape " + dims(t.Shape)
		}
		description = fmt.Sprintf("The %s tensor %q: %s, %s.", kind, t.Name, dt, sh)
	}
	return object{
		{"type", "object"},
		{"description", description},
		{"properties", object{
			{"name", name},
			{"datatype", datatype},
			{"shape", shape},
			{"parameters", parameters},
			{"data", data},
		}},
		{"required", []string{"name", "datatype", "shape", "data"}},
		{"additionalProperties", false},
	}
}

var dimension = object{{"type", "integer"}, {"minimum", 0}}

// element is the schema of one element of a datatype.
func element(d Datatype, response bool) any {
	switch d {
	case BOOL:
		return object{{"type", "boolean"}}
	case BYTES:
		return object{{"type", "string"}}
	case FP16, BF16, FP32, FP64:
		if response {
			return object{{"type", []string{"number", "null"}}}
		}
		return object{{"type", "number"}}
	case INT64:
		return object{{"type", "integer"}}
	case UINT64:
		return object{{"type", "integer"}, {"minimum", 0}}
	}
	if lo, hi, ok := integerRange(d); ok {
		return object{{"type", "integer"}, {"minimum", lo}, {"maximum", hi}}
	}
	return true // no datatype given: any element
}

// integerRange is the range of an integer datatype narrower than 64 bits.
func integerRange(d Datatype) (lo, hi int64, ok bool) {
	switch d {
	case INT8:
		return -1 << 7, 1<<7 - 1, true
	case INT16:
		return -1 << 15, 1<<15 - 1, true
	case INT32:
		return -1 << 31, 1<<31 - 1, true
	case UINT8:
		return 0, 1<<8 - 1, true
	case UINT16:
		return 0, 1<<16 - 1, true
	case UINT32:
		return 0, 1<<32 - 1, true
	}
	return 0, 0, false
}

func tensorNames(ts []TensorMetadata) []string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.Name
	}
	return s
}

// object is a JSON object that keeps its members in order, so a schema
// reads (and a form is laid out) as written.
type object []member

type member struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshal(o object) json.RawMessage {
	b, err := json.Marshal(o)
	if err != nil {
		panic("oip: encoding a schema: " + err.Error()) // only strings, numbers and objects: cannot fail
	}
	return b
}
