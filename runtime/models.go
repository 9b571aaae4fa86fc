package runtime

import (
	"context"
	"net/http"
	"slices"

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
func (r *Runtime) DescribeModel(ctx context.Context, name, version string) (oip.ModelMetadata, error) {
	if err := r.starting(""); err != nil {
		return oip.ModelMetadata{}, err
	}
	if err := r.CheckModel(name); err != nil {
		return oip.ModelMetadata{}, err
	}
	md := oip.ModelMetadata{Platform: "cortex"}
	if r.catalog != nil {
		var err error
		if md, err = r.catalog.DescribeModel(ctx, name, version); err != nil {
			return oip.ModelMetadata{}, err
		}
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

// invokeProtocol converts a KServe V1 request into an OIP request, with
// the first input the catalog describes for the model it names, and the
// answer back. Other requests, and those to a predictor that publishes no
// tensor metadata (it speaks V1 itself), pass as they are.
func (r *Runtime) invokeProtocol(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	if req.Protocol != functions.ProtocolKServeV1 || r.catalog == nil {
		return r.invoke(ctx, req)
	}
	// Describing a model a repository has not loaded loads it: bounded
	// by the prediction's own timeout, as the prediction would be.
	dctx, cancel := context.WithTimeout(ctx, r.limits.Timeout.D())
	md, err := r.catalog.DescribeModel(dctx, req.Model, req.Version)
	cancel()
	if err != nil {
		return r.finish(ctx, req, result{err: err})
	}
	if len(md.Inputs) == 0 {
		return r.invoke(ctx, req)
	}
	body, err := oip.RequestBodyFromV1(req.Body, md.Inputs[0])
	if err != nil {
		return nil, err
	}
	req.Body, req.ContentType, req.Protocol = body, "application/json", functions.ProtocolOIP
	resp, err := r.invoke(ctx, req)
	if err != nil || resp.StatusCode() != http.StatusOK {
		return resp, err
	}
	if body, err = oip.ResponseBodyToV1(resp.Body); err != nil {
		r.log.Error("converting the answer to KServe V1", "request_id", req.ID, "err", err)
		return nil, &functions.Error{Status: http.StatusInternalServerError,
			Message: "internal error converting the answer to KServe V1 (request id " + req.ID + ")", Err: err}
	}
	return functions.Bytes(http.StatusOK, "application/json", body), nil
}
