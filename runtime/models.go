package runtime

import (
	"context"
	"slices"

	"github.com/cortexfn/cortex/functions/oip"
)

// ModelDescriber is implemented by predictors that serve several models
// (ModelLister) and describe each one: the built-in onnx.Repository. The
// error, for an unknown model or version, carries the status to answer.
type ModelDescriber interface {
	DescribeModel(ctx context.Context, name, version string) (oip.ModelMetadata, error)
}

// Models returns the names of the models the function serves: those its
// predictor lists when it serves several (ModelLister), else the
// function's own name. A multi-model predictor lists none before Init.
func (r *Runtime) Models() []string {
	if ml, ok := r.p.(ModelLister); ok {
		return slices.Clone(ml.Models())
	}
	return []string{r.cfg.Name}
}

// DescribeModel returns the metadata of one model for
// GET /v2/models/{name}[/versions/{v}]: from the predictor when it serves
// several models (ModelDescriber), else the function's own metadata
// (ModelMetadata) under that name, or a bare description when the
// predictor publishes none. Until Init has succeeded it returns the 503
// (with Retry-After) that every model route answers then: a client that
// reads the metadata first must not build its request from a model that
// has not loaded.
func (r *Runtime) DescribeModel(ctx context.Context, name, version string) (oip.ModelMetadata, error) {
	if err := r.starting(""); err != nil {
		return oip.ModelMetadata{}, err
	}
	if md, ok := r.p.(ModelDescriber); ok {
		return md.DescribeModel(ctx, name, version)
	}
	md, ok := r.ModelMetadata()
	if !ok {
		md = oip.ModelMetadata{Platform: "cortex"}
	}
	md.Name = name
	if version != "" {
		md.Versions = []string{version}
	}
	return md, nil
}
