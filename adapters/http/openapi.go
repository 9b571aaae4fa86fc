package http

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions/oip"
)

// The OpenAPI document (GET /openapi.json) is written from the function's
// adapters.Description with plain maps and encoding/json. Writing one is
// laying out fields the OpenAPI 3.1 specification names, which needs no
// library; the libraries that model OpenAPI (libopenapi, kin-openapi) earn
// their weight when a document is read, resolved and validated, which the
// tool-side tests do (internal/openapicheck), and they would be a heavy
// dependency of every function binary. encoding/json writes map keys
// sorted, so the same description gives the same bytes.

// OpenAPIVersion is the version of the OpenAPI specification the document
// follows. Its schemas are JSON Schema draft 2020-12, OpenAPI 3.1's
// default dialect.
const OpenAPIVersion = "3.1.0"

// ExtensionCortex is the document's top-level extension holding what the
// function's page shows besides the routes: the build's digest, whether the
// function streams, and its models' tensor metadata (the bodies of
// GET /v2/models/{name}).
const ExtensionCortex = "x-cortex"

type obj = map[string]any

// docOptions says which routes the handler serves beside the ones every
// function has.
type docOptions struct {
	pages   bool // GET /, /docs
	metrics bool // GET /metrics
	catalog bool // the model metadata and index routes
}

// openAPIDoc caches the document for the last description it was built
// from: a description changes rarely (a model loads, a repository
// reloads), and the document of a large schema costs more to write than to
// compare.
type openAPIDoc struct {
	mu   sync.Mutex
	desc adapters.Description
	body []byte
	etag string
	err  error
	ok   bool
}

// get returns the document for d, building it when d differs from the last
// description. Readiness is left out: it changes the routes' answers, not
// the routes.
func (c *openAPIDoc) get(d adapters.Description, o docOptions) ([]byte, string, error) {
	d.Ready = false
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && reflect.DeepEqual(c.desc, d) {
		return c.body, c.etag, c.err
	}
	c.desc, c.ok = d, true
	c.body, c.err = OpenAPI(d, o.pages, o.metrics, o.catalog)
	sum := sha256.Sum256(c.body)
	c.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
	return c.body, c.etag, c.err
}

// serveOpenAPI answers GET /openapi.json.
func (h *Handler) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	body, etag, err := h.doc.get(h.describe(r), docOptions{pages: h.pages, metrics: h.metrics != nil, catalog: h.catalog != nil})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// describe returns the engine's description, or what the handler knows
// of an engine that does not describe itself.
func (h *Handler) describe(r *http.Request) adapters.Description {
	var d adapters.Description
	if h.describer != nil {
		d = h.describer.Describe(r.Context())
	} else {
		d = adapters.Description{Name: h.e.Name(), Ready: h.e.Ready()}
	}
	if d.Name == "" {
		d.Name = h.e.Name()
	}
	if d.Version == "" {
		d.Version = h.version
	}
	return d
}

// OpenAPI returns the OpenAPI 3.1 document of a function described by d,
// served by the HTTP carrier: its own route (POST /predict and POST /)
// with d.Schema, the Open Inference Protocol v2 and KServe V1 routes,
// health, readiness and, with metrics, /metrics; with pages, the page at
// GET / and /docs; with catalog, the model index and metadata routes.
// Every error answer is {"error": "..."}; with d.Auth, every route but the
// probes and the page's shell requires a bearer token.
//
// The schemas of d.Schema are copied in under components/schemas
// ("Input", "Output", and their $defs as "Input.Name"), their local
// references rewritten to point there. An error names a schema that is not
// JSON.
func OpenAPI(d adapters.Description, pages, metrics, catalog bool) ([]byte, error) {
	b := &docBuilder{d: d, schemas: oipSchemas(), paths: obj{}}
	b.schemas["Error"] = obj{
		"type":        "object",
		"description": "Every error answer: what went wrong, in words safe to show the caller.",
		"required":    []string{"error"},
		"properties": obj{
			"error": obj{"type": "string"},
			"fields": obj{"type": "array", "description": "For a 422: every field that fails the input schema.",
				"items": obj{"type": "object", "required": []string{"path", "message"}, "properties": obj{
					"path":    obj{"type": "string", "description": `JSON path from the body's root: "$.inputs[0].shape".`},
					"message": obj{"type": "string"},
				}}},
		},
		"additionalProperties": true,
	}
	input, err := b.importSchema("Input", d.Schema.Input)
	if err != nil {
		return nil, fmt.Errorf("the function's input schema (functions.Schema.Input) is not valid JSON: %w", err)
	}
	output, err := b.importSchema("Output", d.Schema.Output)
	if err != nil {
		return nil, fmt.Errorf("the function's output schema (functions.Schema.Output) is not valid JSON: %w", err)
	}
	b.predictRoutes(input, output, pages)
	b.serviceRoutes(metrics)
	b.oipRoutes(catalog)
	if d.Async {
		b.asyncRoutes(input)
	}

	doc := document{
		OpenAPI: OpenAPIVersion,
		Info: obj{
			"title":   d.Name,
			"version": orDefault(d.Version, "dev"),
			"description": "The routes of the function " + d.Name + ", served by the cortex runtime: " +
				"its own route (POST /predict), the Open Inference Protocol v2 and KServe V1 routes, health and readiness.",
		},
		// Relative to where the document is served: the function's root,
		// on its own port or under cortex serve's /{function}/.
		Servers: []obj{{"url": ".", "description": "the function, where this document is served"}},
		Tags: []obj{
			{"name": "predict", "description": "The function's own route."},
			{"name": "oip", "description": "Open Inference Protocol v2."},
			{"name": "v1", "description": "KServe V1 prediction protocol."},
			{"name": "health", "description": "Liveness, readiness and metrics."},
			{"name": "page", "description": "The function's page and this document."},
		},
		Paths:      b.paths,
		Components: obj{"schemas": b.schemas, "responses": errorResponses(), "headers": headers()},
	}
	if d.Async {
		doc.Tags = append(doc.Tags, obj{"name": "async", "description": "Predictions run in the background (Prefer: respond-async), with webhooks."})
	}
	if d.Auth {
		doc.Components["securitySchemes"] = obj{
			"bearer": obj{"type": "http", "scheme": "bearer",
				"description": "The function's token (auth: in cortex.yaml): Authorization: Bearer TOKEN."},
		}
		doc.Security = []obj{{"bearer": []string{}}}
	}
	models := d.Models
	if models == nil {
		models = []oip.ModelMetadata{}
	}
	doc.Cortex = cortexExtension{Name: d.Name, Digest: d.Digest, Streams: d.Streams, Auth: d.Auth, Models: models}
	return json.MarshalIndent(doc, "", " ")
}

// document is the top of the OpenAPI document, in the order people read
// it.
type document struct {
	OpenAPI    string          `json:"openapi"`
	Info       obj             `json:"info"`
	Servers    []obj           `json:"servers"`
	Security   []obj           `json:"security,omitempty"`
	Tags       []obj           `json:"tags"`
	Paths      obj             `json:"paths"`
	Components obj             `json:"components"`
	Cortex     cortexExtension `json:"x-cortex"`
}

// cortexExtension is the document's x-cortex extension (ExtensionCortex).
type cortexExtension struct {
	Name    string              `json:"name"`
	Digest  string              `json:"digest,omitempty"`
	Streams bool                `json:"streams"`
	Auth    bool                `json:"auth"`
	Models  []oip.ModelMetadata `json:"models"`
}

type docBuilder struct {
	d       adapters.Description
	schemas obj
	paths   obj
}

// op returns an operation. Routes that answer without a token (the probes,
// the page) say so when the function requires one.
func (b *docBuilder) op(id, tag, summary string, open bool) obj {
	o := obj{"operationId": id, "tags": []string{tag}, "summary": summary, "responses": obj{}}
	if open && b.d.Auth {
		o["security"] = []obj{}
	}
	return o
}

// errs adds the error answers of an operation; 401 when the function
// requires a token, unless the operation is open.
func (b *docBuilder) errs(o obj, statuses ...int) obj {
	rs := o["responses"].(obj)
	if b.d.Auth && o["security"] == nil {
		statuses = append(statuses, http.StatusUnauthorized)
	}
	for _, s := range statuses {
		rs[fmt.Sprint(s)] = ref("responses", errorResponseNames[s])
	}
	return o
}

func (b *docBuilder) add(path, method string, o obj) {
	item, _ := b.paths[path].(obj)
	if item == nil {
		item = obj{}
		b.paths[path] = item
	}
	item[method] = o
}

// predictionErrors are what a prediction can answer: a malformed body, a
// model or route the function does not serve, a body over the limit, a
// body that fails the input schema, a predictor that failed, a function
// starting or at capacity, and a prediction that overran its deadline.
var predictionErrors = []int{400, 404, 413, 422, 500, 503, 504}

func (b *docBuilder) predictRoutes(input, output any, pages bool) {
	d := b.d
	req := obj{}
	if input != nil || len(d.Schema.InputMediaTypes) == 0 {
		req["application/json"] = obj{"schema": orAny(input)}
	}
	for _, mt := range d.Schema.InputMediaTypes {
		req[mt] = obj{"schema": binary(mt)}
	}
	ok := obj{"application/json": obj{"schema": orAny(output)}}
	for _, mt := range d.Schema.OutputMediaTypes {
		ok[mt] = obj{"schema": binary(mt)}
	}
	desc := "The prediction."
	if d.Streams {
		ok["text/event-stream"] = obj{"schema": obj{"type": "string",
			"description": `Server-sent events, for a caller that sends Accept: text/event-stream (or "stream": true): ` +
				`one "output" event per chunk of the output ("output.base64" when it is not UTF-8), then "done", ` +
				`or "error" with {"status": N, "error": "..."} when the prediction fails midway.`}}
		desc = "The prediction; streamed as it is produced when the caller asks for text/event-stream."
	}
	model := ownModel(d)
	for _, p := range []struct{ path, id string }{{"/predict", "predict"}, {"/", "predictRoot"}} {
		o := b.op(p.id, "predict", "Run a prediction on the function's own route", false)
		if model != "" {
			o[ExtensionModel] = model
		}
		o["description"] = "The body reaches the function as it came; see the request body's media types."
		o["requestBody"] = obj{"required": true, "content": req}
		if len(d.Models) > 0 {
			o["parameters"] = []obj{{"name": "model", "in": "query", "required": false,
				"description": "The model to run, for a function that serves several.",
				"schema":      modelNameSchema(d)}}
		}
		o["responses"].(obj)["200"] = obj{"description": desc, "headers": obj{"X-Request-Id": ref("headers", "RequestId")}, "content": ok}
		b.add(p.path, "post", b.errs(o, predictionErrors...))
	}
	if pages {
		for _, p := range []struct{ path, id string }{{"/", "page"}, {"/docs", "docs"}} {
			o := b.op(p.id, "page", "The function's page: its description and a form to try it", true)
			o["responses"].(obj)["200"] = obj{"description": "The page's shell; its script reads this document.",
				"content": obj{"text/html": obj{"schema": obj{"type": "string"}}}}
			b.add(p.path, "get", o)
		}
	}
	o := b.op("openapi", "page", "This document", false)
	o["responses"].(obj)["200"] = obj{"description": "The function's OpenAPI 3.1 document.",
		"content": obj{"application/json": obj{"schema": obj{"type": "object"}}}}
	b.add("/openapi.json", "get", b.errs(o))
}

func (b *docBuilder) serviceRoutes(metrics bool) {
	live := obj{"type": "object", "required": []string{"live"}, "properties": obj{"live": obj{"const": true}}}
	ready := obj{"type": "object", "required": []string{"ready"}, "properties": obj{"ready": obj{"const": true}}}
	for _, r := range []struct {
		path, id, summary string
		schema            obj
	}{
		{"/healthz", "healthz", "Liveness: the process is up and need not be replaced", live},
		{"/readyz", "readyz", "Readiness: the function serves predictions", ready},
		{"/v2/health/live", "serverLive", "OIP v2 server liveness", live},
		{"/v2/health/ready", "serverReady", "OIP v2 server readiness", ready},
	} {
		o := b.op(r.id, "health", r.summary, true)
		o["responses"].(obj)["200"] = jsonResponse("Yes.", r.schema)
		b.add(r.path, "get", b.errs(o, 503))
	}
	if metrics {
		o := b.op("metrics", "health", "Prometheus metrics", false)
		o["responses"].(obj)["200"] = obj{"description": "The metrics, in the Prometheus text format.",
			"content": obj{"text/plain": obj{"schema": obj{"type": "string"}}}}
		b.add("/metrics", "get", b.errs(o))
	}
	o := b.op("serverMetadata", "oip", "OIP v2 server metadata", false)
	o["responses"].(obj)["200"] = jsonResponse("The server's name, version and extensions.", ref("schemas", "ServerMetadata"))
	b.add("/v2", "get", b.errs(o))
}

func (b *docBuilder) oipRoutes(catalog bool) {
	name := obj{"name": "model_name", "in": "path", "required": true, "schema": modelNameSchema(b.d)}
	version := obj{"name": "model_version", "in": "path", "required": true, "schema": obj{"type": "string"}}
	inferReq := obj{"required": true, "content": obj{"application/json": obj{"schema": ref("schemas", "InferenceRequest")}}}
	for _, v := range []struct {
		suffix, id string
		params     []obj
	}{{"", "", []obj{name}}, {"/versions/{model_version}", "Version", []obj{name, version}}} {
		o := b.op("infer"+v.id, "oip", "OIP v2 inference", false)
		o["parameters"] = v.params
		o["requestBody"] = inferReq
		o["responses"].(obj)["200"] = jsonResponse("The inference's outputs.", ref("schemas", "InferenceResponse"))
		b.add("/v2/models/{model_name}"+v.suffix+"/infer", "post", b.errs(o, predictionErrors...))
		if !catalog {
			continue
		}
		o = b.op("modelMetadata"+v.id, "oip", "OIP v2 model metadata: the model's input and output tensors", false)
		o["parameters"] = v.params
		o["responses"].(obj)["200"] = jsonResponse("The model's metadata.", ref("schemas", "ModelMetadata"))
		b.add("/v2/models/{model_name}"+v.suffix, "get", b.errs(o, 404, 503))
		o = b.op("modelReady"+v.id, "oip", "OIP v2 model readiness", false)
		o["parameters"] = v.params
		o["responses"].(obj)["200"] = jsonResponse("The model is ready.", ref("schemas", "ModelReady"))
		b.add("/v2/models/{model_name}"+v.suffix+"/ready", "get", b.errs(o, 404, 503))
	}
	b.modelRoutes()
	o := b.op("v1Predict", "v1", "KServe V1 prediction", false)
	o["parameters"] = []obj{name}
	o["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": ref("schemas", "V1Request")}}}
	o["responses"].(obj)["200"] = jsonResponse("The predictions, one per instance.", ref("schemas", "V1Response"))
	b.add("/v1/models/{model_name}:predict", "post", b.errs(o, predictionErrors...))
	if !catalog {
		return
	}
	for _, p := range []struct{ path, id string }{{"/v2/models", "listModels"}, {"/v1/models", "listModelsV1"}} {
		o := b.op(p.id, map[bool]string{true: "oip", false: "v1"}[p.id == "listModels"], "The models the function serves", false)
		o["responses"].(obj)["200"] = jsonResponse("The models' names.", ref("schemas", "ModelIndex"))
		b.add(p.path, "get", b.errs(o, 503))
	}
	o = b.op("v1ModelStatus", "v1", "KServe V1 model status", false)
	o["parameters"] = []obj{name}
	o["responses"].(obj)["200"] = jsonResponse("The model is ready.", ref("schemas", "ModelReady"))
	b.add("/v1/models/{model_name}", "get", b.errs(o, 404, 503))
}

// modelRoutes adds, for each model whose tensors the function has
// described, its own inference route, POST /v2/models/{name}/infer with
// the schemas of that model's request and answer (oip.RequestSchema,
// oip.ResponseSchema): a generated client gets a typed call per model,
// and a validator checks the tensors. OpenAPI matches a concrete path
// before the templated one, which stays for versions and for a model
// loaded later.
func (b *docBuilder) modelRoutes() {
	seen := map[string]bool{}
	for _, m := range b.d.Models {
		name := componentName(m.Name)
		if len(m.Inputs) == 0 || name != m.Name || seen[name] {
			continue // no tensors to say, or a name a path or component cannot hold as it is
		}
		seen[name] = true
		req, err := b.importSchema("Model."+name+".Request", oip.RequestSchema(m))
		if err != nil {
			continue // the oip package writes these: cannot happen
		}
		resp, err := b.importSchema("Model."+name+".Response", oip.ResponseSchema(m))
		if err != nil {
			continue
		}
		o := b.op("infer_"+name, "oip", "OIP v2 inference with model "+m.Name, false)
		o["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": req}}}
		o["responses"].(obj)["200"] = obj{"description": "The inference's outputs.", "content": obj{"application/json": obj{"schema": resp}}}
		b.add("/v2/models/"+name+"/infer", "post", b.errs(o, predictionErrors...))
	}
}

// ExtensionModel, on the own route's operation, names the model whose
// OIP inference request the own route takes (an ONNX function's): the
// page offers that model's tensor form there.
const ExtensionModel = "x-cortex-model"

// ownModel returns the model whose OIP request schema is the own route's
// input schema, "" when there is none.
func ownModel(d adapters.Description) string {
	if len(d.Schema.Input) == 0 {
		return ""
	}
	var own bytes.Buffer
	if json.Compact(&own, d.Schema.Input) != nil {
		return ""
	}
	for _, m := range d.Models {
		var req bytes.Buffer
		if len(m.Inputs) > 0 && json.Compact(&req, oip.RequestSchema(m)) == nil && bytes.Equal(own.Bytes(), req.Bytes()) {
			return m.Name
		}
	}
	return ""
}

// modelNameSchema lists the models the function serves, when it has said
// which; a function with no catalogue serves one model named after it.
func modelNameSchema(d adapters.Description) obj {
	if len(d.Models) == 0 {
		return obj{"type": "string", "examples": []string{d.Name}}
	}
	names := make([]string, 0, len(d.Models))
	for _, m := range d.Models {
		names = append(names, m.Name)
	}
	return obj{"type": "string", "enum": names}
}

// importSchema copies the JSON Schema raw into components/schemas under
// name, with its $defs (and draft-07 definitions) beside it as
// "name.Def", and returns a reference to it; nil for no schema. Local
// references ("#", "#/$defs/X", "#/properties/...") are rewritten to
// where the schemas now are, since inside the document "#" is the
// document's root, not the schema's. Everything else is copied as it
// came, in its order: the page lays out a form's fields in the order of
// the schema's properties.
func (b *docBuilder) importSchema(name string, raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if !json.Valid(raw) {
		var v any
		return nil, json.Unmarshal(raw, &v) // says where it is not JSON
	}
	var root map[string]json.RawMessage
	if json.Unmarshal(raw, &root) != nil {
		return raw, nil // true or false: any or none
	}
	// The document says its dialect; an $id would move the base the
	// rewritten references resolve against.
	delete(root, "$schema")
	delete(root, "$id")
	defs := map[string]map[string]json.RawMessage{}
	prefixes := map[string]string{} // old pointer prefix -> new
	for _, kw := range []string{"$defs", "definitions"} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(root[kw], &m); err != nil || m == nil {
			continue
		}
		defs[kw] = m
		delete(root, kw)
		for k := range m {
			prefixes["#/"+kw+"/"+escapePointer(k)] = "#/components/schemas/" + componentName(name+"."+k)
		}
	}
	rewrite := func(r string) string {
		if !strings.HasPrefix(r, "#") {
			return r // another document's: left as it is
		}
		for old, repl := range prefixes {
			if r == old || strings.HasPrefix(r, old+"/") {
				return repl + strings.TrimPrefix(r, old)
			}
		}
		return "#/components/schemas/" + name + strings.TrimPrefix(r, "#")
	}
	for _, m := range defs {
		for k, v := range m {
			out, err := rewriteRefs(v, rewrite)
			if err != nil {
				return nil, err
			}
			b.schemas[componentName(name+"."+k)] = out
		}
	}
	for k, v := range root {
		if k == "$ref" {
			var r string
			if json.Unmarshal(v, &r) == nil {
				root[k] = mustJSON(rewrite(r))
			}
			continue
		}
		out, err := rewriteRefs(v, rewrite)
		if err != nil {
			return nil, err
		}
		root[k] = out
	}
	b.schemas[name] = root
	return ref("schemas", name), nil
}

// rewriteRefs returns the JSON document src with the value of every
// "$ref" member that is a string replaced by rewrite's answer, and
// everything else as it was, in its order.
func rewriteRefs(src json.RawMessage, rewrite func(string) string) (json.RawMessage, error) {
	if !bytes.Contains(src, []byte(`"$ref"`)) {
		return src, nil
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	type level struct {
		object, first, key bool // key: the next token is a member's name
		ref                bool // the member being read is "$ref"
	}
	var (
		out   bytes.Buffer
		stack []level
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		var top *level
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			out.WriteByte(byte(d))
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
			continue
		}
		if top != nil {
			if top.object && top.key || !top.object {
				if !top.first {
					out.WriteByte(',')
				}
				top.first = false
			}
		}
		if top != nil && top.object && top.key {
			k := tok.(string)
			top.ref, top.key = k == "$ref", false
			out.Write(mustJSON(k))
			out.WriteByte(':')
			continue
		}
		switch v := tok.(type) {
		case json.Delim:
			out.WriteByte(byte(v))
			stack = append(stack, level{object: v == '{', first: true, key: v == '{'})
			continue
		case string:
			if top != nil && top.object && top.ref {
				v = rewrite(v)
			}
			out.Write(mustJSON(v))
		case json.Number:
			out.WriteString(v.String())
		default: // bool, nil
			out.Write(mustJSON(v))
		}
		if top != nil && top.object {
			top.key, top.ref = true, false
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // strings, booleans and null always encode
	return b
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

var componentChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// componentName is name as OpenAPI allows a component's name to be.
func componentName(name string) string { return componentChars.ReplaceAllString(name, "_") }

func ref(kind, name string) obj { return obj{"$ref": "#/components/" + kind + "/" + name} }

func orAny(s any) any {
	if s == nil {
		return obj{}
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// binary is the schema of a body sent as it is, of media type mt.
func binary(mt string) obj {
	return obj{"type": "string", "contentMediaType": mt, "description": "The body as it is (" + mt + ")."}
}

// asyncRoutes adds what a function that runs predictions in the
// background answers (docs/async.md): Prefer: respond-async and a webhook
// on every prediction route, and the prediction resource's routes.
func (b *docBuilder) asyncRoutes(input any) {
	b.schemas["Prediction"] = obj{"type": "object", "required": []string{"id", "status", "created_at", "urls"},
		"description": "A prediction run in the background: the body of GET /predictions/{id} and of every webhook delivery.",
		"properties": obj{
			"id":              obj{"type": "string"},
			"status":          obj{"enum": []string{"starting", "processing", "succeeded", "failed", "canceled"}},
			"created_at":      obj{"type": "string", "format": "date-time"},
			"started_at":      obj{"type": "string", "format": "date-time"},
			"completed_at":    obj{"type": "string", "format": "date-time"},
			"output":          obj{"description": "The answer's body: as it came when JSON, else base64 (output_encoding)."},
			"output_encoding": obj{"const": "base64"},
			"content_type":    obj{"type": "string"},
			"status_code":     obj{"type": "integer", "description": "The HTTP status the prediction answered with."},
			"error":           obj{"type": "string"},
			"urls": obj{"type": "object", "properties": obj{
				"get": obj{"type": "string"}, "cancel": obj{"type": "string"},
			}},
		}}
	prediction := jsonResponse("The prediction.", ref("schemas", "Prediction"))
	accepted := jsonResponse("Accepted: the prediction runs in the background; Location is its resource.", ref("schemas", "Prediction"))
	accepted["headers"] = obj{"Location": obj{"description": "The prediction's resource, /predictions/{id}.", "schema": obj{"type": "string"}}}
	params := []obj{
		{"name": "Prefer", "in": "header", "required": false, "schema": obj{"type": "string", "examples": []string{"respond-async", "respond-async, wait=5"}},
			"description": "respond-async (RFC 7240): answer 202 at once and run the prediction in the background; wait=N answers the finished prediction when it is done within N seconds."},
		{"name": "Cortex-Webhook", "in": "header", "required": false, "schema": obj{"type": "string", "format": "uri"},
			"description": "A URL the prediction's events are POSTed to, signed as Standard Webhooks specifies."},
		{"name": "webhook", "in": "query", "required": false, "schema": obj{"type": "string", "format": "uri"},
			"description": "The same as the Cortex-Webhook header."},
	}
	for _, item := range b.paths {
		o, ok := item.(obj)["post"].(obj)
		if !ok || o["requestBody"] == nil {
			continue // not a prediction route
		}
		ps, _ := o["parameters"].([]obj)
		o["parameters"] = append(ps, params...)
		o["responses"].(obj)["202"] = accepted
	}
	id := obj{"name": "id", "in": "path", "required": true, "schema": obj{"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"}}
	get := b.op("getPrediction", "async", "A background prediction: its state, and its output once done", false)
	get["parameters"] = []obj{id}
	get["responses"].(obj)["200"] = prediction
	get["responses"].(obj)["202"] = jsonResponse("Still running.", ref("schemas", "Prediction"))
	b.add("/predictions/{id}", "get", b.errs(get, 404))
	put := b.op("putPrediction", "async", "Run a prediction under the caller's id: a repeat never runs it twice", false)
	put["parameters"] = append([]obj{id}, params...)
	put["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": orAny(input)}}}
	put["responses"].(obj)["200"] = prediction
	put["responses"].(obj)["202"] = accepted
	b.add("/predictions/{id}", "put", b.errs(put, 400, 409, 413, 422, 503))
	cancel := b.op("cancelPrediction", "async", "Cancel a background prediction (a finished one stays as it is)", false)
	cancel["parameters"] = []obj{id}
	cancel["responses"].(obj)["200"] = prediction
	b.add("/predictions/{id}/cancel", "post", b.errs(cancel, 404))
}

func jsonResponse(desc string, schema obj) obj {
	return obj{"description": desc, "content": obj{"application/json": obj{"schema": schema}}}
}

var errorResponseNames = map[int]string{
	400: "BadRequest",
	401: "Unauthorized",
	404: "NotFound",
	409: "Conflict",
	413: "TooLarge",
	422: "Invalid",
	500: "Failed",
	503: "Unavailable",
	504: "Timeout",
}

func errorResponses() obj {
	body := obj{"application/json": obj{"schema": ref("schemas", "Error")}}
	out := obj{}
	for status, desc := range map[int]string{
		400: "The request is malformed: its body is not what the route takes.",
		401: "The function requires a bearer token, and the request has none or a wrong one.",
		404: "No such route, or a model the function does not serve (the error names those it serves).",
		409: "The prediction id names a prediction made from another request.",
		413: "The body is over the function's limit (limits.max_body).",
		422: "The body does not match the function's input schema; the error lists every failing field.",
		500: "The function failed; its log has the details.",
		503: "The function is starting or at capacity: retry after Retry-After seconds.",
		504: "The prediction overran the function's deadline (limits.timeout).",
	} {
		r := obj{"description": desc, "content": body}
		switch status {
		case 401:
			r["headers"] = obj{"WWW-Authenticate": ref("headers", "WWWAuthenticate")}
		case 503:
			r["headers"] = obj{"Retry-After": ref("headers", "RetryAfter")}
		}
		out[errorResponseNames[status]] = r
	}
	return out
}

func headers() obj {
	return obj{
		"RequestId":       obj{"description": "The request's id: the caller's X-Request-Id, or one the function made.", "schema": obj{"type": "string"}},
		"RetryAfter":      obj{"description": "Seconds to wait before retrying.", "schema": obj{"type": "integer", "minimum": 0}},
		"WWWAuthenticate": obj{"description": `Bearer realm="FUNCTION" (RFC 6750).`, "schema": obj{"type": "string"}},
	}
}

// oipSchemas are the Open Inference Protocol v2 and KServe V1 bodies,
// for any model: per-model tensor metadata is in the document's
// x-cortex extension and at GET /v2/models/{name}.
func oipSchemas() obj {
	var datatypes []oip.Datatype
	for _, dt := range []oip.Datatype{oip.BOOL, oip.UINT8, oip.UINT16, oip.UINT32, oip.UINT64, oip.INT8, oip.INT16,
		oip.INT32, oip.INT64, oip.FP16, oip.FP32, oip.FP64, oip.BF16, oip.BYTES} {
		if dt.Valid() { // the list above, checked against the protocol's
			datatypes = append(datatypes, dt)
		}
	}
	params := obj{"type": "object", "additionalProperties": true}
	shape := obj{"type": "array", "items": obj{"type": "integer"}}
	data := obj{"description": "The elements, flat in row-major order or nested as the shape.",
		"type": []string{"array", "number", "string", "boolean"}}
	tensor := func(desc string, required ...string) obj {
		return obj{"type": "object", "description": desc, "required": required, "properties": obj{
			"name": obj{"type": "string"}, "shape": shape, "datatype": ref("schemas", "Datatype"),
			"parameters": params, "data": data,
		}}
	}
	return obj{
		"Datatype": obj{"type": "string", "enum": datatypes},
		"ServerMetadata": obj{"type": "object", "required": []string{"name", "version", "extensions"}, "properties": obj{
			"name": obj{"type": "string"}, "version": obj{"type": "string"},
			"extensions": obj{"type": "array", "items": obj{"type": "string"}},
		}},
		"ModelIndex": obj{"type": "object", "required": []string{"models"}, "properties": obj{
			"models": obj{"type": "array", "items": obj{"type": "string"}},
		}},
		"ModelReady": obj{"type": "object", "required": []string{"name", "ready"}, "properties": obj{
			"name": obj{"type": "string"}, "ready": obj{"type": "boolean"},
		}},
		"TensorMetadata": obj{"type": "object", "required": []string{"name", "datatype", "shape"}, "properties": obj{
			"name": obj{"type": "string"}, "datatype": ref("schemas", "Datatype"),
			"shape": obj{"type": "array", "items": obj{"type": "integer"}, "description": "-1: any size."},
		}},
		"ModelMetadata": obj{"type": "object", "required": []string{"name", "platform", "inputs", "outputs"}, "properties": obj{
			"name": obj{"type": "string"}, "versions": obj{"type": "array", "items": obj{"type": "string"}},
			"platform": obj{"type": "string"},
			"inputs":   obj{"type": "array", "items": ref("schemas", "TensorMetadata")},
			"outputs":  obj{"type": "array", "items": ref("schemas", "TensorMetadata")},
		}},
		"RequestInput": tensor("An input tensor.", "name", "shape", "datatype", "data"),
		"RequestOutput": obj{"type": "object", "required": []string{"name"}, "properties": obj{
			"name": obj{"type": "string"}, "parameters": params,
		}},
		"InferenceRequest": obj{"type": "object", "required": []string{"inputs"}, "properties": obj{
			"id": obj{"type": "string"}, "parameters": params,
			"inputs":  obj{"type": "array", "items": ref("schemas", "RequestInput")},
			"outputs": obj{"type": "array", "items": ref("schemas", "RequestOutput"), "description": "The outputs wanted; none: all."},
		}},
		"ResponseOutput": tensor("An output tensor.", "name", "shape", "datatype", "data"),
		"InferenceResponse": obj{"type": "object", "required": []string{"model_name", "outputs"}, "properties": obj{
			"model_name": obj{"type": "string"}, "model_version": obj{"type": "string"}, "id": obj{"type": "string"},
			"parameters": params, "outputs": obj{"type": "array", "items": ref("schemas", "ResponseOutput")},
		}},
		"V1Request": obj{"type": "object", "required": []string{"instances"}, "properties": obj{
			"instances": obj{"type": "array", "description": "One element per instance: the model's first input, one row each."},
		}},
		"V1Response": obj{"type": "object", "required": []string{"predictions"}, "properties": obj{
			"predictions": obj{"type": "array"},
		}},
	}
}
