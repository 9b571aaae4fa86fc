package functions

import "encoding/json"

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
// route takes and answers. Typed implements it from its Go types. A
// predictor that embeds the Predictor Typed returns (a struct with Init
// beside it) forwards it: func (p *P) Schema() functions.Schema { return
// functions.SchemaOf(p.Predictor) }.
type SchemaProvider interface {
	Schema() Schema
}

// SchemaOf returns p's Schema when p publishes one, else the zero Schema.
func SchemaOf(p Predictor) Schema {
	if s, ok := p.(SchemaProvider); ok {
		return s.Schema()
	}
	return Schema{}
}
