package functions

import (
	"net/http"
	"net/url"
)

// Carrier names what delivered a request.
type Carrier string

// The carriers a function can be reached through.
const (
	CarrierHTTP       Carrier = "http"
	CarrierLambda     Carrier = "lambda"
	CarrierCloudEvent Carrier = "cloudevent"
)

// Protocol names the inference protocol of the route a request came in on.
// The runtime and the built-in predictors use it to shape input and output;
// a Go predictor is free to ignore it.
type Protocol string

// The protocols a route can speak.
const (
	// ProtocolRaw is the function's own route (POST /predict): the body is
	// whatever the caller sent.
	ProtocolRaw Protocol = ""
	// ProtocolOIP is the Open Inference Protocol v2 (KServe V2, Triton)
	// infer route: the body is an inference request in OIP JSON.
	ProtocolOIP Protocol = "oip-v2"
	// ProtocolKServeV1 is the KServe V1 predict route
	// (POST /v1/models/{name}:predict) when the predictor publishes no
	// tensor metadata: the body is {"instances": [...]} as the caller sent
	// it and the predictor answers {"predictions": [...]} itself.
	ProtocolKServeV1 Protocol = "kserve-v1"
)

// Request is one prediction request, whatever carried it.
type Request struct {
	// ID identifies the request in logs and in the X-Request-Id header of the
	// response. The caller's X-Request-Id is kept when it sent one.
	ID string
	// Method is the HTTP method (POST for events that have none).
	Method string
	// Path is the path after the function's root, starting with "/".
	Path string
	// Query holds the query parameters as the caller sent them.
	Query url.Values
	// Header holds the request headers with canonical keys.
	Header http.Header
	// ContentType is the media type of Body (the Content-Type header).
	ContentType string
	// Body is the request payload. It is never nil for a request that had a
	// body and is bounded by limits.max_body.
	Body []byte
	// Carrier says what delivered the request.
	Carrier Carrier
	// Protocol says which inference protocol the route speaks.
	Protocol Protocol
	// Model is the model the route named (/v2/models/{name}/infer), or the
	// ?model= query parameter; empty when none was named.
	Model string
	// Version is the model version the route named, if any.
	Version string
	// Attributes holds carrier-specific facts: CloudEvent attributes
	// ("ce-type", "ce-source", ...), the Lambda request id, and so on.
	Attributes map[string]string
}
