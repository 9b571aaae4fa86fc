package adapters

import (
	"context"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// Describer is implemented by an Engine that can describe its function
// for people and generated clients: *runtime.Runtime. The HTTP carrier
// builds /openapi.json and the function's page (/, /docs) from it. It
// tells only what any caller of the function's routes may learn from them
// (names, schemas, model metadata), never its configuration, environment
// or files.
type Describer interface {
	Describe(ctx context.Context) Description
}

// Description is what a function says about itself.
type Description struct {
	// Name is the function's name.
	Name string `json:"name"`
	// Version is the version of the cortex runtime serving it.
	Version string `json:"version"`
	// Digest identifies the function's build (its binary's sha256), when
	// known.
	Digest string `json:"digest,omitempty"`
	// Ready reports whether the function serves predictions now.
	Ready bool `json:"ready"`
	// Schema describes the function's own route (POST /predict).
	Schema functions.Schema `json:"schema"`
	// Streams reports whether the predictor streams its output (a
	// functions.Streamer): the own route answers a text/event-stream
	// caller with server-sent events.
	Streams bool `json:"streams,omitempty"`
	// Models describes the models served on the OIP and KServe V1 routes;
	// empty until the function is ready, and for a function with no
	// model catalogue.
	Models []oip.ModelMetadata `json:"models,omitempty"`
	// Auth reports whether the function's routes require a bearer token.
	Auth bool `json:"auth,omitempty"`
	// Async reports whether the function runs predictions in the
	// background (Prefer: respond-async, /predictions/{id}; see
	// AsyncEngine).
	Async bool `json:"async,omitempty"`
}
