// Package http is the plain HTTP carrier: it maps an HTTP request onto a
// functions.Request, hands it to the engine, and writes the
// functions.Response back.
//
// Routes:
//
//	POST /predict, POST /                 the function's own route: the body reaches the predictor as it came
//	GET  /, /docs                         the function's page: its description and a form to try it (see page.go)
//	GET  /-/page.js, /-/page.css          the page's script and style
//	GET  /openapi.json                    the function's OpenAPI 3.1 document (see OpenAPI)
//	GET  /healthz                         live: the process is up and need not be replaced
//	GET  /readyz                          ready: Init succeeded and the function is not draining
//	GET  /metrics                         Prometheus metrics (when the engine has them)
//	GET  /v2                              Open Inference Protocol v2 server metadata
//	GET  /v2/health/live, /v2/health/ready
//	GET  /v2/models, /v1/models           the models the function serves: {"models": [names]}
//	GET  /v2/models/{name}[/versions/{v}]         model metadata
//	GET  /v2/models/{name}[/versions/{v}]/ready   model readiness
//	POST /v2/models/{name}[/versions/{v}]/infer   OIP v2 inference
//	GET  /v1/models/{name}                KServe V1 model status
//	POST /v1/models/{name}:predict        KServe V1 prediction ({"instances"} -> {"predictions"})
//	GET  /predictions/{id}                a background prediction (Prefer: respond-async on a prediction route; async.go)
//	PUT  /predictions/{id}                a background prediction under the caller's id, made once
//	POST /predictions/{id}/cancel         cancels it
//
// The page and its files are static and hold nothing of the function's
// (PageShell); WithoutPages turns them off. Every error body is
// {"error": "..."}, unknown routes included. Until the engine is ready,
// every model route (metadata, model readiness, inference) answers 503
// with Retry-After, as /readyz does. Which models
// the function serves, and whether a route names one of them, the handler
// asks the engine (adapters.Catalog): it keeps no list of its own, and
// serves no model routes for an engine without one.
package http

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// LivenessReporter is implemented by engines that know when their process
// must be replaced (*runtime.Runtime, when a prediction overran its
// deadline): /healthz and /v2/health/live then answer 503 with the
// reason, so a supervisor (the kubelet's liveness probe, cortex serve)
// replaces the process.
type LivenessReporter interface {
	// Live returns nil while the process can go on serving, else why not.
	Live() error
}

// Option configures the handler.
type Option func(*Handler)

// WithMetrics serves h at /metrics.
func WithMetrics(h http.Handler) Option { return func(x *Handler) { x.metrics = h } }

// WithVersion sets the server version reported by GET /v2.
func WithVersion(v string) Option { return func(x *Handler) { x.version = v } }

// WithoutCompression turns off compression of JSON and text responses.
func WithoutCompression() Option { return func(x *Handler) { x.noCompress = true } }

// Handler serves a function over HTTP.
type Handler struct {
	e          adapters.Engine
	catalog    adapters.Catalog   // nil: the engine serves no model routes
	describer  adapters.Describer // nil: the document says what the handler knows
	liveness   LivenessReporter
	metrics    http.Handler
	version    string
	noCompress bool
	pages      bool
	doc        openAPIDoc
}

// New returns the HTTP handler for e. JSON and text responses are
// compressed for clients that accept gzip or zstd, unless
// WithoutCompression is given.
func New(e adapters.Engine, opts ...Option) http.Handler {
	h := &Handler{e: e, version: "dev", pages: true}
	h.catalog, _ = e.(adapters.Catalog)
	h.describer, _ = e.(adapters.Describer)
	h.liveness, _ = e.(LivenessReporter)
	for _, o := range opts {
		o(h)
	}
	if h.noCompress {
		return h
	}
	return compressResponses(h)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/predict":
		if allow(w, r, http.MethodPost) {
			h.predict(w, r)
		}
	case p == "/" && h.pages:
		if allow(w, r, http.MethodPost, http.MethodGet, http.MethodHead) {
			if r.Method == http.MethodPost {
				h.predict(w, r)
			} else {
				servePage(w, r)
			}
		}
	case p == "/":
		if allow(w, r, http.MethodPost) {
			h.predict(w, r)
		}
	case h.pages && PagePath(p):
		if allow(w, r, http.MethodGet, http.MethodHead) {
			servePage(w, r)
		}
	case p == "/openapi.json":
		h.serveOpenAPI(w, r)
	case p == "/healthz":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			h.live(w)
		}
	case p == "/readyz":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			h.ready(w)
		}
	case p == "/metrics" && h.metrics != nil:
		if allow(w, r, http.MethodGet, http.MethodHead) {
			h.metrics.ServeHTTP(w, r)
		}
	case p == "/v2" || strings.HasPrefix(p, "/v2/"):
		h.oip(w, r, strings.TrimPrefix(p, "/v2"))
	case p == "/v1/models" || p == "/v1/models/":
		h.modelIndex(w, r)
	case strings.HasPrefix(p, "/v1/models/"):
		h.v1(w, r, strings.TrimPrefix(p, "/v1/models/"))
	case strings.HasPrefix(p, "/predictions/"):
		h.predictions(w, r)
	case h.servesRoute(p):
		if allow(w, r, http.MethodPost) {
			h.predict(w, r)
		}
	default:
		h.notFound(w, r)
	}
}

func (h *Handler) live(w http.ResponseWriter) {
	if h.liveness != nil {
		if err := h.liveness.Live(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"live": true})
}

func (h *Handler) ready(w http.ResponseWriter) {
	if h.e.Ready() {
		writeJSON(w, http.StatusOK, map[string]any{"ready": true})
		return
	}
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "function is not ready")
}

// oip serves the Open Inference Protocol v2 routes; rest is the path after /v2.
func (h *Handler) oip(w http.ResponseWriter, r *http.Request, rest string) {
	switch rest {
	case "", "/":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, map[string]any{"name": "cortex", "version": h.version, "extensions": []string{}})
		}
		return
	case "/health/live":
		if allow(w, r, http.MethodGet) {
			h.live(w)
		}
		return
	case "/health/ready":
		if allow(w, r, http.MethodGet) {
			h.ready(w)
		}
		return
	}
	if rest == "/models" || rest == "/models/" {
		h.modelIndex(w, r)
		return
	}
	model, ok := strings.CutPrefix(rest, "/models/")
	if !ok || model == "" {
		h.notFound(w, r)
		return
	}
	name, tail, _ := strings.Cut(model, "/")
	version := ""
	if v, ok := strings.CutPrefix(tail, "versions/"); ok {
		version, tail, _ = strings.Cut(v, "/")
		if version == "" {
			h.notFound(w, r)
			return
		}
	}
	if tail == "infer" {
		if allow(w, r, http.MethodPost) {
			h.predict(w, r) // the runtime answers 404 for a model it does not serve
		}
		return
	}
	if !h.knownModel(w, r, name) {
		return
	}
	switch tail {
	case "":
		if allow(w, r, http.MethodGet) {
			h.modelMetadata(w, r, name, version)
		}
	case "ready":
		if allow(w, r, http.MethodGet) {
			if h.notReady(w, name) {
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": true})
		}
	default:
		h.notFound(w, r)
	}
}

// knownModel answers the engine's error when it does not serve the model
// name: 404 naming the models it serves, or 503 while they load; and 404
// for every model route of an engine without a catalog.
func (h *Handler) knownModel(w http.ResponseWriter, r *http.Request, name string) bool {
	if h.catalog == nil {
		h.notFound(w, r)
		return false
	}
	if err := h.catalog.CheckModel(name); err != nil {
		writeResponse(w, adapters.ErrorResponse(err, ""))
		return false
	}
	return true
}

// modelIndex answers GET /v2/models and GET /v1/models: the models the
// function serves, as KServe's V1 list ({"models": [names]}), from the
// engine's catalog; 503 until the engine is ready, as every model route.
func (h *Handler) modelIndex(w http.ResponseWriter, r *http.Request) {
	if h.catalog == nil {
		h.notFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		// Most likely a prediction sent without its model's name: the
		// 405 says where predictions go, as a 404 for a wrong path does.
		m := h.exampleModel()
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf(
			"method %s not allowed on %s, which lists the models (GET); send predictions to POST /predict, POST /v2/models/%s/infer or POST /v1/models/%s:predict",
			r.Method, r.URL.Path, m, m))
		return
	}
	if !h.e.Ready() {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "function is not ready: its models are loading")
		return
	}
	models := h.catalog.Models()
	if models == nil {
		models = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

// notReady answers 503 with Retry-After, as KServe does for a model that
// has not loaded, and reports true, unless the engine is ready.
func (h *Handler) notReady(w http.ResponseWriter, name string) bool {
	if h.e.Ready() {
		return false
	}
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("model %q is not ready", name))
	return true
}

func (h *Handler) modelMetadata(w http.ResponseWriter, r *http.Request, name, version string) {
	md, err := h.catalog.DescribeModel(r.Context(), name, version)
	if err != nil {
		writeResponse(w, adapters.ErrorResponse(err, ""))
		return
	}
	writeJSON(w, http.StatusOK, md)
}

// v1 serves KServe V1; rest is the path after /v1/models/.
func (h *Handler) v1(w http.ResponseWriter, r *http.Request, rest string) {
	name, verb, hasVerb := strings.Cut(rest, ":")
	if name == "" || strings.Contains(name, "/") {
		h.notFound(w, r)
		return
	}
	switch {
	case verb == "predict":
		if allow(w, r, http.MethodPost) {
			h.predict(w, r) // the runtime converts V1 for predictors that publish tensor metadata
		}
	case !hasVerb:
		if h.knownModel(w, r, name) && allow(w, r, http.MethodGet) && !h.notReady(w, name) {
			writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": true})
		}
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown KServe V1 verb %q: use POST /v1/models/%s:predict", verb, name))
	}
}

// predict hands a prediction route's request to the engine.
func (h *Handler) predict(w http.ResponseWriter, r *http.Request) {
	req, err := Request(r, h.e.MaxBody())
	if err != nil {
		if functions.StatusOf(err) == http.StatusRequestEntityTooLarge {
			// The rest of an oversized body is not read: close the
			// connection rather than drain it.
			w.Header().Set("Connection", "close")
		}
		writeResponse(w, adapters.ErrorResponse(err, r.Header.Get("X-Request-Id")))
		return
	}
	if !adapters.Route(req) && !h.servesRoute(req.Path) {
		writeResponse(w, adapters.ErrorResponse(adapters.NotFound(r.Method, r.URL.Path, h.exampleModel()), req.ID))
		return
	}
	if ae, ok := h.e.(adapters.AsyncEngine); ok && adapters.ParsePrefer(r.Header).RespondAsync() {
		h.submit(w, r, req, ae, "")
		return
	}
	if se, ok := h.e.(adapters.StreamEngine); ok {
		if stream, sse := adapters.WantsStream(r.Header, req.Body); stream {
			h.stream(w, r, req, se, sse)
			return
		}
	}
	resp, err := h.e.Invoke(r.Context(), req)
	if err != nil {
		resp = adapters.ErrorResponse(err, req.ID)
	} else {
		setRequestID(resp, req.ID)
	}
	writeResponse(w, resp)
}

// Request builds the functions.Request for r, reading the body under the
// engine's limit. It is exported so other carriers that receive HTTP (the
// Knative CloudEvents carrier) build exactly the same request.
func Request(r *http.Request, maxBody int64) (*functions.Request, error) {
	body, err := readBody(r, maxBody)
	if err != nil {
		return nil, err
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" {
		if body, err = decodeBody(enc, body, maxBody); err != nil {
			return nil, err
		}
		// The predictor gets the body decoded: say so.
		r.Header.Del("Content-Encoding")
	}
	return &functions.Request{
		ID:          r.Header.Get("X-Request-Id"),
		Method:      r.Method,
		Path:        r.URL.Path,
		Query:       r.URL.Query(),
		Header:      r.Header,
		ContentType: r.Header.Get("Content-Type"),
		Body:        body,
		Carrier:     functions.CarrierHTTP,
	}, nil
}

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, adapters.TooLarge(r.ContentLength, limit)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength >= 0 {
		// Known size: one exact allocation (net/http stops the body at
		// Content-Length, so it cannot run longer).
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, bodyError(err)
		}
		return buf, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, bodyError(err)
	}
	if int64(len(body)) > limit {
		return nil, adapters.TooLarge(0, limit)
	}
	return body, nil
}

func bodyError(err error) error {
	return &functions.Error{Status: http.StatusBadRequest, Message: "reading the request body: " + err.Error(), Err: err}
}

// servesRoute reports whether the predictor serves path as a POST route
// of its own (functions.Router).
func (h *Handler) servesRoute(path string) bool {
	rs, ok := h.e.(adapters.RouteServer)
	return ok && rs.ServesRoute(path)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	writeResponse(w, adapters.ErrorResponse(adapters.NotFound(r.Method, r.URL.Path, h.exampleModel()), ""))
}

// exampleModel is the model a 404 for an unknown path suggests routes to,
// so that following the suggestion reaches a model: the function's name
// when that is a model it serves (a one-model function), else the first of
// the models it serves.
func (h *Handler) exampleModel() string {
	name := h.e.Name()
	if h.catalog == nil {
		return name
	}
	if names := h.catalog.Models(); len(names) > 0 && !slices.Contains(names, name) {
		return names[0]
	}
	return name
}

// allow answers 405 with an Allow header unless r's method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	list := strings.Join(methods, ", ")
	w.Header().Set("Allow", list)
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, list))
	return false
}

func setRequestID(resp *functions.Response, id string) {
	if resp.Header == nil {
		resp.Header = make(http.Header, 1)
	}
	resp.Header.Set("X-Request-Id", id)
}

func writeResponse(w http.ResponseWriter, resp *functions.Response) {
	dst := w.Header()
	for k, v := range resp.Header {
		dst[k] = v
	}
	if len(resp.Body) > 0 && dst.Get("Content-Type") == "" {
		dst.Set("Content-Type", http.DetectContentType(resp.Body))
	}
	dst.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.StatusCode())
	_, _ = w.Write(resp.Body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	writeResponse(w, functions.Bytes(status, "application/json", b))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeResponse(w, functions.Bytes(status, "application/json", functions.ErrorBody(msg)))
}

var _ http.Handler = (*Handler)(nil)
