package oip

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cortexfn/cortex/functions"
)

// Catalog is implemented by a predictor that knows which models it serves
// and can describe each one: the built-in onnx.Predictor (one model, named
// after the function) and onnx.Repository (several, by name and version).
// It is the one answer to "which models does this function serve". The
// runtime finds it by type assertion and, with it, checks the model every
// request names (a 404 naming the models served, from ModelNotFound),
// answers GET /v2/models/{name}, and turns a KServe V1 request into an
// inference request with the first input DescribeModel reports.
//
// A predictor that does not implement Catalog serves one model named after
// the function, with no tensor metadata: the runtime then passes KServe V1
// requests to it as they came.
type Catalog interface {
	// Models returns the names of the models served, sorted; none until
	// Init has found them. The slice is the catalog's: the caller must
	// not change it.
	Models() []string
	// DescribeModel returns the metadata of model name at version (""
	// for the version a request naming none is served by). The runtime
	// calls it only with a name Models returns, after Init; its error
	// carries the status to answer (see functions.Error): 404 for a
	// version the model does not have, for one. The runtime calls it as
	// it calls Predict: holding a concurrency slot, under the request's
	// deadline, with panics recovered. For a KServe V1 request it calls it
	// and then Predict, both with a context that carries the request's
	// Pin.
	DescribeModel(ctx context.Context, name, version string) (ModelMetadata, error)
}

// Pin carries, through one request, what a Catalog's DescribeModel
// resolved a model to, so that the prediction of the same request is
// served by it. The runtime converts a KServe V1 request with the
// description of its model and then calls Predict, both with a context
// that carries a Pin (WithPin), and releases the Pin once Predict has
// returned. A catalog whose models change while it serves (onnx.Repository
// reloads them) holds the model version it described in the Pin and
// predicts with it, rather than with a version loaded in between whose
// inputs the request was not converted for. A catalog that holds nothing
// in it is not affected. The Pin is one request's: a PredictBatch call,
// which serves several, must not use the one its context may carry.
//
// The methods of a nil *Pin do nothing (Hold releases at once), so a
// catalog can call PinFrom(ctx).Hold without a check. A Pin is safe for
// concurrent use.
type Pin struct {
	mu       sync.Mutex
	held     any
	release  func()
	released bool
}

type pinKey struct{}

// WithPin returns a context carrying a new, empty Pin, and the Pin. The
// caller releases it when the request is done.
func WithPin(ctx context.Context) (context.Context, *Pin) {
	p := &Pin{}
	return context.WithValue(ctx, pinKey{}, p), p
}

// PinFrom returns the Pin ctx carries, nil when it carries none.
func PinFrom(ctx context.Context) *Pin {
	p, _ := ctx.Value(pinKey{}).(*Pin)
	return p
}

// Hold keeps v until the Pin is released, and calls release (when not
// nil) then; what the Pin held before is released now. On a nil or
// released Pin it calls release at once and reports false.
func (p *Pin) Hold(v any, release func()) bool {
	if p == nil {
		if release != nil {
			release()
		}
		return false
	}
	p.mu.Lock()
	if p.released {
		p.mu.Unlock()
		if release != nil {
			release()
		}
		return false
	}
	prev := p.release
	p.held, p.release = v, release
	p.mu.Unlock()
	if prev != nil {
		prev()
	}
	return true
}

// Held returns what the Pin holds: nil when it holds nothing, and once it
// has been released.
func (p *Pin) Held() any {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Release releases what the Pin holds; the Pin holds nothing from then
// on. Only the first call does anything.
func (p *Pin) Release() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.released {
		p.mu.Unlock()
		return
	}
	release := p.release
	p.held, p.release, p.released = nil, nil, true
	p.mu.Unlock()
	if release != nil {
		release()
	}
}

// ModelNotFound is the 404 for a request that names a model the function
// does not serve, listing those it does so the caller can pick one. The
// runtime answers it for every request and model route that names an
// unknown model; a predictor called directly, without the runtime in
// front (a Go function that runs the onnx predictor itself), answers with
// it too, so a caller reads one wording whichever refused the request.
// With none served (a repository whose models were all removed, or one
// called before its Init), it says so.
func ModelNotFound(name string, served []string) error {
	if len(served) == 0 {
		return &functions.Error{Status: http.StatusNotFound,
			Message: fmt.Sprintf("model %q not found; this function serves no models at the moment", name)}
	}
	q := make([]string, len(served))
	for i, n := range served {
		q[i] = strconv.Quote(n)
	}
	return &functions.Error{Status: http.StatusNotFound,
		Message: fmt.Sprintf("model %q not found; this function serves %s", name, strings.Join(q, ", "))}
}
