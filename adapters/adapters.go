// Package adapters holds what every carrier shares: the Engine a carrier
// hands requests to, and the one conversion of an error to the wire.
//
// An adapter only translates: event in -> functions.Request, and
// functions.Response -> event out. Limits, deadlines, metrics, batching and
// WebAssembly stages live once, in the runtime, which implements Engine.
// The carriers live in the subpackages http, lambda and knative.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/cortexfn/cortex/functions"
)

// Engine serves requests for a carrier. *runtime.Runtime implements it.
type Engine interface {
	// Invoke runs one prediction. It never panics. A non-nil error carries
	// the status the caller should see (see functions.StatusOf) and a
	// message safe to show them.
	Invoke(ctx context.Context, req *functions.Request) (*functions.Response, error)
	// Name is the function's name (and its model name on the OIP routes).
	Name() string
	// MaxBody is the largest request body in bytes; a carrier refuses a
	// larger one with 413 before reading it whole.
	MaxBody() int64
	// Ready reports whether the predictor has initialised and the engine is
	// not shutting down.
	Ready() bool
}

// ErrorResponse converts an error from Engine.Invoke (or from a carrier's
// own decoding) into the response every carrier sends: the error's status,
// a JSON body {"error": "..."}, and Retry-After when the error asks for it.
func ErrorResponse(err error, requestID string) *functions.Response {
	status := functions.StatusOf(err)
	msg := http.StatusText(status)
	var fe *functions.Error
	if errors.As(err, &fe) && fe.Message != "" {
		msg = fe.Message
	}
	resp := functions.Bytes(status, "application/json", functions.ErrorBody(msg))
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
