package runtime

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// This file is the function's one model catalogue: which models it
// serves, the check of the model a request names, their descriptions, and
// the KServe V1 conversion that needs them. The predictor says what it
// serves through oip.Catalog; the carriers ask the runtime through
// adapters.Catalog; nothing else keeps a list of models or words a
// "model not found".

// Models returns the names of the models the function serves: those its
// predictor's catalog (oip.Catalog) lists, none until Init has found
// them, else the function's own name.
func (r *Runtime) Models() []string { return slices.Clone(r.served()) }

// served is Models without the copy, for the check on every request.
func (r *Runtime) served() []string {
	if r.catalog != nil {
		return r.catalog.Models()
	}
	return r.ownModel
}

// CheckModel returns nil when the function serves the model name, else
// the error to answer: the 404 naming the models it serves
// (oip.ModelNotFound), or, while a predictor that finds its models in
// Init has not listed them yet, the 503 every model route answers until
// Init has succeeded.
func (r *Runtime) CheckModel(name string) error {
	served := r.served()
	if slices.Contains(served, name) {
		return nil
	}
	if len(served) == 0 {
		if err := r.starting(""); err != nil {
			return err
		}
	}
	return oip.ModelNotFound(name, served)
}

// route checks the model a request names. A predictor with a catalog is
// held to it on every route; otherwise the function is its one model,
// named on the OIP and V1 routes, while a ?model= on the function's own
// route is left to the predictor.
func (r *Runtime) route(req *functions.Request) error {
	if req.Model == "" || (r.catalog == nil && req.Protocol == functions.ProtocolRaw) {
		return nil
	}
	err := r.CheckModel(req.Model)
	if err != nil {
		r.m.rejected.WithLabelValues("unknown_model").Inc()
	}
	return err
}

// DescribeModel returns the metadata of one model for
// GET /v2/models/{name}[/versions/{v}]: the predictor's description
// (oip.Catalog), else a bare one, under the name asked for. Until Init
// has succeeded it returns the 503 (with Retry-After) that every model
// route answers then: a client that reads the metadata first must not
// build its request from a model that has not loaded. A model the
// function does not serve is the 404 of CheckModel.
//
// Describing a model a repository has not loaded loads it, as a
// prediction would: so the catalog is asked as a prediction is run (see
// invoke), holding a concurrency slot, within limits.timeout, admitted
// only while not draining, and a panic in it is a 500.
func (r *Runtime) DescribeModel(ctx context.Context, name, version string) (oip.ModelMetadata, error) {
	if err := r.starting(""); err != nil {
		return oip.ModelMetadata{}, err
	}
	if err := r.CheckModel(name); err != nil {
		return oip.ModelMetadata{}, err
	}
	md := oip.ModelMetadata{Platform: "cortex"}
	if r.catalog != nil {
		req := &functions.Request{ID: NewRequestID(), Method: http.MethodGet, Model: name, Version: version}
		var described oip.ModelMetadata
		_, err := r.invoke(ctx, req, func(ctx context.Context, _ *functions.Request) (*functions.Response, error) {
			var err error
			described, err = r.catalog.DescribeModel(ctx, name, version)
			return nil, err
		})
		if err != nil {
			return oip.ModelMetadata{}, err
		}
		// Read only once invoke has the job's answer: a job past its
		// deadline may still be writing it.
		md = described
	}
	md.Name = name
	if version != "" && len(md.Versions) == 0 {
		// A model without versions is served whatever version a route
		// names (/v2/models/{name}/versions/{v}/infer reaches it), so
		// its description names that one.
		md.Versions = []string{version}
	}
	return md, nil
}

// serve is the job of a prediction (see invoke). A KServe V1 request is
// converted into an OIP request, with the first input the catalog
// describes for the model it names, and the answer back; other requests,
// and those to a predictor that publishes no tensor metadata (it speaks
// V1 itself), pass as they are.
//
// The description is part of the prediction: describing a model a
// repository has not loaded loads it, so it holds the request's slot,
// counts against its deadline (a slow load is the 504 of a slow
// prediction), and a panic in it is the predictor's. An oip.Pin in the
// context lets the catalog serve the prediction with the model version it
// described, even if a reload replaces that version in between.
func (r *Runtime) serve(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	if req.Protocol != functions.ProtocolKServeV1 || r.catalog == nil {
		return r.predict(ctx, req)
	}
	ctx, pin := oip.WithPin(ctx)
	defer pin.Release()
	md, err := r.catalog.DescribeModel(ctx, req.Model, req.Version)
	if err != nil {
		return nil, err
	}
	if len(md.Inputs) == 0 {
		return r.predict(ctx, req)
	}
	body, err := oip.RequestBodyFromV1(req.Body, md.Inputs[0])
	if err != nil {
		return nil, err
	}
	// A copy: the carrier's request is left as it came, and this
	// goroutine, which may outlive the caller's answer, writes only its own.
	sub := *req
	sub.Body, sub.ContentType, sub.Protocol = body, "application/json", functions.ProtocolOIP
	resp, err := r.predict(ctx, &sub)
	if err != nil {
		return nil, v1Fields(err)
	}
	if resp == nil || resp.StatusCode() != http.StatusOK {
		return resp, err
	}
	if body, err = oip.ResponseBodyToV1(resp.Body); err != nil {
		r.log.Error("converting the answer to KServe V1", "request_id", req.ID, "err", err)
		return nil, &functions.Error{Status: http.StatusInternalServerError,
			Message: "internal error converting the answer to KServe V1 (request id " + req.ID + ")", Err: err}
	}
	return functions.Bytes(http.StatusOK, "application/json", body), nil
}

// v1Fields rewords the 422 of a converted KServe V1 request for its
// caller, who sent "instances", not the OIP "inputs" it was converted to:
// the paths of its fields at fault ($.inputs[0].shape) become
// $.instances, in the fields and the message alike.
func v1Fields(err error) error {
	var fe *functions.Error
	if !errors.As(err, &fe) || len(fe.Fields) == 0 {
		return err
	}
	out := *fe
	out.Fields = make([]functions.FieldError, len(fe.Fields))
	for i, f := range fe.Fields {
		if strings.HasPrefix(f.Path, "$.inputs") {
			out.Message = strings.Replace(out.Message, f.Path+": ", "$.instances: ", 1)
			f.Path = "$.instances"
		}
		out.Fields[i] = f
	}
	return &out
}
