package oip

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cortexfn/cortex/functions"
)

// ModelNotFound is the 404 for a request that names a model the function
// does not serve, listing those it does so the caller can pick one. Every
// place that checks a model's name (the HTTP carrier's model routes, the
// runtime, the ONNX predictors) answers with it, so a caller reads one
// wording whichever refused the request.
func ModelNotFound(name string, served []string) error {
	q := make([]string, len(served))
	for i, n := range served {
		q[i] = strconv.Quote(n)
	}
	return &functions.Error{Status: http.StatusNotFound,
		Message: fmt.Sprintf("model %q not found; this function serves %s", name, strings.Join(q, ", "))}
}
