package oip

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

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
	// version the model does not have, for one.
	DescribeModel(ctx context.Context, name, version string) (ModelMetadata, error)
}

// ModelNotFound is the 404 for a request that names a model the function
// does not serve, listing those it does so the caller can pick one. The
// runtime answers it for every request and model route that names an
// unknown model; a predictor called directly, without the runtime in
// front (a Go function that runs the onnx predictor itself), answers with
// it too, so a caller reads one wording whichever refused the request.
func ModelNotFound(name string, served []string) error {
	q := make([]string, len(served))
	for i, n := range served {
		q[i] = strconv.Quote(n)
	}
	return &functions.Error{Status: http.StatusNotFound,
		Message: fmt.Sprintf("model %q not found; this function serves %s", name, strings.Join(q, ", "))}
}
