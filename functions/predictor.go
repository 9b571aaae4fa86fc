package functions

import "context"

// Predictor serves predictions. Predict may be called from many goroutines at
// once; the runtime bounds how many (limits.max_concurrency in cortex.yaml).
type Predictor interface {
	Predict(ctx context.Context, req *Request) (*Response, error)
}

// PredictorFunc adapts an ordinary function to a Predictor.
type PredictorFunc func(ctx context.Context, req *Request) (*Response, error)

// Predict calls f(ctx, req).
func (f PredictorFunc) Predict(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

// Initializer is implemented by predictors that load a model before serving.
// The runtime calls Init once, before the function reports ready; an error
// stops the function from starting and is reported, never swallowed.
type Initializer interface {
	Init(ctx context.Context, cfg Config) error
}

// Closer is implemented by predictors that hold resources (a model session, a
// pool). The runtime calls Close once, after the last in-flight request has
// finished during shutdown.
type Closer interface {
	Close() error
}

// BatchPredictor is implemented by predictors that can serve several requests
// in one call. It returns one response per request, in order. The runtime
// uses it when batching is configured.
type BatchPredictor interface {
	PredictBatch(ctx context.Context, reqs []*Request) ([]*Response, error)
}

// Config is what the runtime passes to Init.
type Config struct {
	// Name is the function's name (cortex.yaml name).
	Name string
	// Dir is the directory the function's files were shipped in; relative
	// paths in the spec are resolved against it.
	Dir string
	// Model is the absolute path of the model file or directory
	// (predictor.model), empty when the spec names none.
	Model string
	// Values holds predictor.config from cortex.yaml, decoded from YAML/JSON.
	Values map[string]any
	// GPU is the number of GPUs the spec asks for (compute.gpu). A predictor
	// uses an accelerator only when one is asked for and present.
	GPU int
}

var _ Predictor = PredictorFunc(nil)
