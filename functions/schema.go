package functions

import (
	"encoding/json"
	"reflect"
)

// Schema describes a predictor's own route (POST /predict): what it takes
// and what it answers. The function's OpenAPI document (/openapi.json) and
// its web page (/) are generated from it, and a predictor that publishes
// an Input schema is held to it: Typed answers a JSON body that fails it
// with a 422 listing every failing field.
//
// Schemas are JSON Schema documents (draft 2020-12, the dialect of
// OpenAPI 3.1).
type Schema struct {
	// Input is the JSON Schema of a JSON request body; nil when the route
	// takes any JSON, or no JSON at all (see InputMediaTypes).
	Input json.RawMessage `json:"input,omitempty"`
	// Output is the JSON Schema of a 200 JSON response body; nil: any.
	Output json.RawMessage `json:"output,omitempty"`
	// InputMediaTypes lists the non-JSON bodies the route takes as they
	// come ("image/png", "image/*", "application/octet-stream", "text/plain"):
	// the page offers a file upload or a text area for them.
	InputMediaTypes []string `json:"input_media_types,omitempty"`
	// OutputMediaTypes lists the non-JSON bodies the route may answer
	// ("image/png"): the page shows an image output as an image.
	OutputMediaTypes []string `json:"output_media_types,omitempty"`
}

// SchemaProvider is implemented by a predictor that can say what its own
// route takes and answers. Typed implements it from its Go types.
type SchemaProvider interface {
	Schema() Schema
}

// SchemaOf returns p's Schema when p publishes one, else the schema of
// the Predictor p embeds, else the zero Schema. A struct that embeds the
// Predictor Typed returns, to keep Init and its own state beside it (as
// `cortex init` writes a Go function), is promoted only Predict by Go:
// SchemaOf looks through the embedding, so such a predictor publishes
// its Typed schema without a method of its own.
func SchemaOf(p Predictor) Schema {
	if s, ok := p.(SchemaProvider); ok {
		return s.Schema()
	}
	if inner := embedded(p); inner != nil {
		return SchemaOf(inner)
	}
	return Schema{}
}

var predictorType = reflect.TypeFor[Predictor]()

// embedded returns the Predictor that p (a struct, or a pointer to one)
// embeds, nil when it embeds none.
func embedded(p Predictor) Predictor {
	v := reflect.ValueOf(p)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	t := v.Type()
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && f.Type == predictorType {
			if inner, _ := v.Field(i).Interface().(Predictor); inner != nil {
				return inner
			}
		}
	}
	return nil
}
