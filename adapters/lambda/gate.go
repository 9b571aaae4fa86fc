package lambda

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/cortexfn/cortex/functions"
)

// WithGate puts gate in front of every HTTP event, as the HTTP carrier
// puts the same middleware in front of its handler (runtime.Main gives
// the function's CORS policy and token check, so both carriers answer
// alike). gate wraps a handler that stands for the function: a request
// gate passes on to it goes on to be served (a prediction or a service
// route), with the headers gate set on the way (CORS's) added to its
// answer, streamed or not; a request gate answers itself (a 401, a CORS
// preflight) gets that answer, and the predictor never sees it. gate sees
// the request's method, path, query and headers, never its body.
//
// A direct invoke does not pass through gate: it has no HTTP headers, and
// whoever may invoke the function directly (lambda:InvokeFunction) has
// been let in by IAM already.
func WithGate(gate func(next http.Handler) http.Handler) Option {
	return func(o *options) error {
		if gate == nil {
			return errors.New("lambda: WithGate needs a middleware")
		}
		o.gate = gate
		return nil
	}
}

// passedKey is the context key of the flag the gate's inner handler sets.
type passedKey struct{}

// through is the handler a gate wraps: reaching it is passing the gate.
var through = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
	if p, ok := r.Context().Value(passedKey{}).(*bool); ok {
		*p = true
	}
})

// gated runs req through the gate. It returns the gate's own answer when
// the gate answered req, or nil and the headers the gate set for the
// answer when it let req through.
func (h *handler) gated(ctx context.Context, req *functions.Request) (*functions.Response, http.Header) {
	if h.gate == nil {
		return nil, nil
	}
	passed := false
	w := &recorder{header: make(http.Header)}
	h.gate.ServeHTTP(w, httpRequest(context.WithValue(ctx, passedKey{}, &passed), req))
	if passed {
		return nil, w.header
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	resp := &functions.Response{Status: w.status, Header: w.header, Body: w.body.Bytes()}
	w.header.Del("Content-Length") // the invoking service sets its own
	if req.Method == http.MethodHead {
		resp.Body = nil
	}
	return resp, nil
}

// httpRequest is req as net/http would have handed it to a handler,
// without its body.
func httpRequest(ctx context.Context, req *functions.Request) *http.Request {
	u := &url.URL{Path: req.Path, RawQuery: req.Query.Encode()}
	return (&http.Request{
		Method:     req.Method,
		URL:        u,
		RequestURI: u.RequestURI(),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     req.Header,
		Body:       http.NoBody,
	}).WithContext(ctx)
}

// addHeaders adds the headers a gate set to an answer's: Vary joins the
// answer's own, and any other header the answer set itself stays its own.
func addHeaders(dst, extra http.Header) {
	for k, vs := range extra {
		switch {
		case k == "Vary":
			dst[k] = append(dst[k], vs...)
		case dst[k] == nil:
			dst[k] = vs
		}
	}
}
