package onnx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// Session is one ONNX model held by a `type: go` predictor: the way a Go
// function runs several models (an OCR pipeline's detector and recogniser,
// say) or shapes tensors itself rather than speaking the Open Inference
// Protocol. Open it in the predictor's Init and close it in its Close.
//
// A Session is the built-in predictor's session without its protocol: the
// library is found and loaded the same way (once per process, see
// LibraryCandidates), the execution provider is chosen and logged the same
// way (CUDA when a GPU is asked for and usable, else the CPU), and Run may be
// called from many goroutines at once.
type Session struct {
	p *Predictor
}

// SessionOptions configures Open. The zero value runs on the CPU with
// GOMAXPROCS threads and looks for the library in the usual places.
type SessionOptions struct {
	// GPU is the number of GPUs the function asks for (functions.Config.GPU).
	// When it is above 0 the session uses the CUDA execution provider if the
	// loaded ONNX Runtime has it and a device is present, and the CPU
	// otherwise; either way a log line says which and why.
	GPU int
	// Dir is the function's directory (functions.Config.Dir); the library is
	// also looked for in its lib/.
	Dir string
	// IntraOpThreads is how many threads one Run may use. Zero means
	// GOMAXPROCS, which follows the container's CPU limit.
	IntraOpThreads int
}

// Tensor is a float32 tensor: Data holds the elements in row-major order
// and its length is the product of Shape.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("onnx: session is closed")

// Open loads the ONNX model at path into a new session. ctx bounds nothing
// yet (ONNX Runtime cannot stop a model while it loads) but is taken so
// that a later version can.
func Open(ctx context.Context, path string, opts SessionOptions) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.IntraOpThreads < 0 {
		return nil, fmt.Errorf("onnx: SessionOptions.IntraOpThreads is %d; want 0 (GOMAXPROCS) or more", opts.IntraOpThreads)
	}
	cfg := functions.Config{Name: path, Dir: opts.Dir, Model: path, GPU: opts.GPU}
	if opts.IntraOpThreads > 0 {
		cfg.Values = map[string]any{ConfigIntraOpThreads: opts.IntraOpThreads}
	}
	p := New()
	if err := p.Init(ctx, cfg); err != nil {
		return nil, err
	}
	return &Session{p: p}, nil
}

// Inputs describes the model's inputs, in the order Run takes them. A -1
// dimension takes any size.
func (s *Session) Inputs() []oip.TensorMetadata { return s.p.ModelMetadata().Inputs }

// Outputs describes the model's outputs, in the order Run returns them.
func (s *Session) Outputs() []oip.TensorMetadata { return s.p.ModelMetadata().Outputs }

// Provider returns the execution provider the session runs on: "CPU" or
// "CUDA".
func (s *Session) Provider() string { return s.p.Provider() }

// LoadDuration is how long Open took to read the model and create the
// session. A predictor that opens sessions in its Init reports their sum
// as its own LoadDuration (runtime.LoadTimer: the cold start's load
// phase).
func (s *Session) LoadDuration() time.Duration { return s.p.LoadDuration() }

// Run runs the model on inputs, one per model input in the model's order,
// and returns every output in the model's order. Every input and output must
// be float32. Inputs are checked against the model (count, element count,
// shape) before anything runs; Run stops early, with an error wrapping the
// context's, when ctx is done.
func (s *Session) Run(ctx context.Context, inputs ...Tensor) ([]Tensor, error) {
	p := s.p
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.session == nil {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("onnx: inference not started: %w", context.Cause(ctx))
	}
	if len(inputs) != len(p.inputs) {
		return nil, fmt.Errorf("onnx: %d inputs given; the model takes %d: %s", len(inputs), len(p.inputs), describeAll(p.inputs))
	}
	for _, t := range p.outputs {
		if t.Datatype != oip.FP32 {
			return nil, fmt.Errorf("onnx: output %q is %s; Session.Run returns FP32 outputs only", t.Name, t.Datatype)
		}
	}
	values := make([]ort.Value, len(inputs))
	defer destroyAll(values)
	for i, in := range inputs {
		model := &p.inputs[i]
		if model.Datatype != oip.FP32 {
			return nil, fmt.Errorf("onnx: input %q is %s; Session.Run takes FP32 inputs only", model.Name, model.Datatype)
		}
		if !model.Accepts(in.Shape) || len(in.Shape) == 0 {
			return nil, fmt.Errorf("onnx: input %q: shape %v does not match the model's %v (-1 takes any size)", model.Name, in.Shape, model.Shape)
		}
		if n, ok := elements(in.Shape); !ok || n != len(in.Data) {
			return nil, fmt.Errorf("onnx: input %q: shape %v does not hold the %d elements given", model.Name, in.Shape, len(in.Data))
		}
		v, err := ort.NewTensor(ort.Shape(in.Shape), in.Data)
		if err != nil {
			return nil, fmt.Errorf("onnx: input %q: %w", model.Name, err)
		}
		values[i] = v
	}
	var rows int64
	if len(inputs) > 0 {
		rows = inputs[0].Shape[0] // every input has a dimension: checked above
	}
	outputs, err := p.runModel(ctx, values, rows)
	if err != nil {
		return nil, err
	}
	defer destroyAll(outputs)
	out := make([]Tensor, len(outputs))
	for i, v := range outputs {
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("onnx: output %q is a %T, not a float32 tensor", p.outputs[i].Name, v)
		}
		// GetData is the Go slice the result is in (written there by ONNX
		// Runtime or copied there by onnxruntime_go): it outlives the value
		// destroyed above.
		out[i] = Tensor{Shape: slices.Clone([]int64(t.GetShape())), Data: t.GetData()}
	}
	return out, nil
}

// Close releases the session. Runs in flight finish first; later Runs
// return ErrClosed. The ONNX Runtime environment stays loaded: it is shared
// by the whole process.
func (s *Session) Close() error { return s.p.Close() }

// elements returns the product of shape, and false when a dimension is
// negative or the product overflows an int.
func elements(shape []int64) (int, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > (1<<62)/d) {
			return 0, false
		}
		n *= d
	}
	return int(n), true
}
