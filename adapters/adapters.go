// Package adapters holds what every carrier shares: the Engine a carrier
// hands requests to (and the Catalog it asks about models), the one route
// table (Route, ServiceRoute), and the one conversion of an error to the
// wire (ErrorResponse).
//
// An adapter only translates: event in -> functions.Request, and
// functions.Response -> event out. Limits, deadlines, metrics, batching,
// WebAssembly stages, the check of a request's model and the KServe V1
// conversion live once, in the runtime, which implements Engine. The
// carriers live in the subpackages http, lambda and knative. None of them
// imports the runtime (it imports them), the packager, Kubernetes or the
// AWS SDK.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// Engine serves requests for a carrier. *runtime.Runtime implements it,
// and Catalog too.
type Engine interface {
	// Invoke runs one prediction. It never panics. A non-nil error carries
	// the status the caller should see (see functions.StatusOf) and a
	// message safe to show them.
	Invoke(ctx context.Context, req *functions.Request) (*functions.Response, error)
	// Name is the function's name.
	Name() string
	// MaxBody is the largest request body in bytes; a carrier refuses a
	// larger one with 413 before reading it whole.
	MaxBody() int64
	// Ready reports whether the predictor has initialised and the engine is
	// not shutting down.
	Ready() bool
}

// Catalog is implemented by an Engine that knows the models its function
// serves: *runtime.Runtime, whose answer is the function's one model
// catalogue. A carrier asks it, for its model routes
// (GET /v2/models/{name}[/ready], GET /v1/models/{name}) and the routes a
// 404 suggests, and keeps no list of its own nor checks a model's name
// itself. The HTTP carrier serves the model routes only for an engine
// that has one.
type Catalog interface {
	// Models returns the names of the models served, sorted; none while
	// a function that finds its models in Init is starting.
	Models() []string
	// CheckModel returns nil when the function serves the model name,
	// else the error to answer: 404 naming the models served, or 503 with
	// Retry-After while they are still loading.
	CheckModel(name string) error
	// DescribeModel returns the metadata of model name at version ("" for
	// the default), the body of GET /v2/models/{name}[/versions/{v}]. Its
	// error carries the status to answer: 503 until the predictor has
	// initialised, 404 for an unknown model or version.
	DescribeModel(ctx context.Context, name, version string) (oip.ModelMetadata, error)
}

// ErrorResponse converts an error from Engine.Invoke (or from a carrier's
// own decoding) into the response every carrier sends: the error's status,
// a JSON body {"error": "..."} (with "fields", each failing field of a
// request that failed its schema, when the error lists them: see
// functions.ErrorBody), and Retry-After when the error asks for it.
func ErrorResponse(err error, requestID string) *functions.Response {
	status := functions.StatusOf(err)
	msg := http.StatusText(status)
	var fe *functions.Error
	var fields []functions.FieldError
	if errors.As(err, &fe) {
		if fe.Message != "" {
			msg = fe.Message
		}
		fields = fe.Fields
	}
	resp := functions.Bytes(status, "application/json", functions.ErrorBody(msg, fields...))
	if fe != nil && fe.RetryAfter > 0 {
		secs := int(math.Ceil(fe.RetryAfter.Seconds()))
		resp.Header.Set("Retry-After", strconv.Itoa(secs))
	}
	if requestID != "" {
		resp.Header.Set("X-Request-Id", requestID)
	}
	return resp
}

// TooLarge is the 413 every carrier returns for a body over the limit. got
// is the body's size when known, else 0.
func TooLarge(got, limit int64) error {
	size := "over"
	if got > 0 {
		size = fmt.Sprintf("%d bytes, over", got)
	}
	return &functions.Error{Status: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("request body is %s the function's limit of %d bytes (limits.max_body in cortex.yaml)", size, limit)}
}

// Route reads the prediction route from req.Path and sets req.Protocol,
// req.Model and req.Version from it, the same way for every carrier:
//
//	/, /predict                                   the function's own route (raw body)
//	/v2/models/{name}[/versions/{v}]/infer        Open Inference Protocol v2
//	/v1/models/{name}:predict                     KServe V1
//
// A ?model= query parameter names the model when the path does not. Route
// reports false when the path is none of these; the request is then left on
// the function's own route. The HTTP carrier owns its whole URL space and
// answers such a path 404 (NotFound); the Lambda and CloudEvents carriers do
// not, since API Gateway, ALB rules and Knative triggers mount a function
// under paths of their choosing.
func Route(req *functions.Request) bool {
	ok := route(req)
	if !ok {
		req.Protocol, req.Model, req.Version = functions.ProtocolRaw, "", ""
	}
	if req.Model == "" && req.Query != nil {
		req.Model = req.Query.Get("model")
	}
	return ok
}

func route(req *functions.Request) bool {
	p := req.Path
	switch {
	case p == "" || p == "/" || p == "/predict":
		req.Protocol = functions.ProtocolRaw
		return true
	case strings.HasPrefix(p, "/v2/models/"):
		rest, ok := strings.CutSuffix(strings.TrimPrefix(p, "/v2/models/"), "/infer")
		if !ok {
			return false
		}
		name, version, hasVersion := strings.Cut(rest, "/versions/")
		if name == "" || strings.Contains(name, "/") || (hasVersion && (version == "" || strings.Contains(version, "/"))) {
			return false
		}
		req.Protocol, req.Model, req.Version = functions.ProtocolOIP, name, version
		return true
	case strings.HasPrefix(p, "/v1/models/"):
		name, ok := strings.CutSuffix(strings.TrimPrefix(p, "/v1/models/"), ":predict")
		if !ok || name == "" || strings.ContainsAny(name, "/:") {
			return false
		}
		req.Protocol, req.Model = functions.ProtocolKServeV1, name
		return true
	}
	return false
}

// ServiceRoute reports whether path is one of the routes the HTTP carrier
// (adapters/http) answers itself, beside predictions:
//
//	/healthz, /readyz, /metrics                   liveness, readiness, Prometheus metrics
//	/v2, /v2/health/live, /v2/health/ready        Open Inference Protocol v2 server routes
//	/v2/models, /v1/models                        the models the function serves
//	/v2/models/{name}[/versions/{v}][/ready]      OIP model metadata and readiness
//	/v1/models/{name}                             KServe V1 model status
//	/openapi.json                                 the function's OpenAPI document
//	/predictions/{id}[/cancel]                    background predictions (AsyncEngine)
//
// A carrier that does not own its whole URL space (Lambda behind API
// Gateway, an ALB or a function URL) answers these paths as the HTTP
// carrier does, so health checks and OIP clients see the same function
// everywhere, and takes every other path as a prediction (see Route).
func ServiceRoute(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/v2", "/v2/", "/v2/health/live", "/v2/health/ready",
		"/v2/models", "/v2/models/", "/v1/models", "/v1/models/", "/openapi.json":
		return true
	}
	if _, _, ok := PredictionRoute(path); ok {
		return true
	}
	if rest, ok := strings.CutPrefix(path, "/v2/models/"); ok {
		// The HTTP carrier's reading: name[/versions/v][/tail].
		name, tail, _ := strings.Cut(rest, "/")
		if v, ok := strings.CutPrefix(tail, "versions/"); ok {
			var version string
			version, tail, _ = strings.Cut(v, "/")
			if version == "" {
				return false
			}
		}
		return name != "" && (tail == "" || tail == "ready")
	}
	if name, ok := strings.CutPrefix(path, "/v1/models/"); ok {
		return name != "" && !strings.ContainsAny(name, "/:")
	}
	return false
}

// NotFound is the 404 a carrier answers for a path that is not a route.
func NotFound(method, path, function string) error {
	return &functions.Error{Status: http.StatusNotFound, Message: fmt.Sprintf(
		"no route for %s %s: send predictions to POST /predict, POST /v2/models/%s/infer or POST /v1/models/%s:predict",
		method, path, function, function)}
}
