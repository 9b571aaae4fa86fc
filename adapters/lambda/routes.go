package lambda

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/cortexfn/cortex/adapters"
	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
)

// serve answers an HTTP event's request the way the HTTP carrier answers
// the same request, except that a path the HTTP carrier does not know is
// the function's own route (see adapters.Route). bodyErr is the error
// reading the event's body gave, if any: like the HTTP carrier, it matters
// only once the request is known to be a prediction.
func (h *handler) serve(ctx context.Context, req *functions.Request, bodyErr error) (*functions.Response, error) {
	if adapters.ServiceRoute(req.Path) || h.pageRoute(req) {
		return h.serveRoute(ctx, req), nil
	}
	adapters.Route(req) // any other path is the function's own route
	if req.Method != http.MethodPost {
		resp := methodNotAllowed(req.Method, req.Path)
		if req.Method == http.MethodHead {
			resp.Body = nil // net/http sends a HEAD answer's headers only
		}
		return resp, nil
	}
	if bodyErr != nil {
		return nil, bodyErr
	}
	return h.call(ctx, req)
}

// pageRoute reports whether req is for the function's page, on a carrier
// told to serve it (WithPages): any request to one of its paths but a
// POST to /, which is a prediction. The routes handler answers it as over
// HTTP: the page to a GET or HEAD, a 405 naming them to another method.
func (h *handler) pageRoute(req *functions.Request) bool {
	if !h.o.pages || !httpadapter.PagePath(req.Path) {
		return false
	}
	return req.Path != "/" || req.Method != http.MethodPost
}

// methodNotAllowed is the HTTP carrier's 405 for a prediction route.
func methodNotAllowed(method, path string) *functions.Response {
	resp := adapters.ErrorResponse(&functions.Error{Status: http.StatusMethodNotAllowed,
		Message: fmt.Sprintf("method %s not allowed on %s; use %s", method, path, http.MethodPost)}, "")
	resp.Header.Set("Allow", http.MethodPost)
	return resp
}

// serveRoute answers a service route (health, readiness, metrics, OIP and
// KServe V1 metadata) with the HTTP carrier's own handler, so the status,
// headers and body are the ones a client gets over plain HTTP.
func (h *handler) serveRoute(ctx context.Context, req *functions.Request) (resp *functions.Response) {
	defer func() {
		if v := recover(); v != nil {
			resp = adapters.ErrorResponse(&functions.Error{Status: http.StatusInternalServerError,
				Message: "internal error (request id " + req.ID + ")", Err: fmt.Errorf("route %s panicked: %v", req.Path, v)}, req.ID)
		}
	}()
	w := &recorder{header: make(http.Header)}
	h.o.routes.ServeHTTP(w, httpRequest(ctx, req))
	if w.status == 0 {
		w.status = http.StatusOK
	}
	resp = &functions.Response{Status: w.status, Header: w.header, Body: w.body.Bytes()}
	if req.Method == http.MethodHead {
		resp.Body = nil // net/http sends a HEAD answer's headers only
	} else {
		w.header.Del("Content-Length") // the invoking service sets its own, as for predictions
	}
	return resp
}

// recorder is the http.ResponseWriter a service route writes to.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

var _ http.ResponseWriter = (*recorder)(nil)
