package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// Predictor serves an ONNX model: the built-in predictor of
// `predictor.type: onnx`. Create it with New; the runtime calls Init, then
// Predict from many goroutines, then Close.
//
// Predict takes an Open Inference Protocol v2 inference request in JSON
// (on the function's own route and on the OIP route alike) and answers with
// an inference response in JSON.
type Predictor struct {
	// mu guards session against Close while a Run is in flight. Runs share
	// one session: ONNX Runtime's Run is safe to call concurrently on one
	// session, and onnxruntime_go's DynamicAdvancedSession adds no shared
	// mutable state of its own (input and output names are fixed at
	// creation and values are passed per call).
	mu      sync.RWMutex
	session *ort.DynamicAdvancedSession

	name        string
	served      []string          // {name}, for Models
	meta        oip.ModelMetadata // what ModelMetadata copies; requests are checked against it
	inputs      []tensorInfo
	outputs     []tensorInfo
	maxElements int
	provider    string
	load        time.Duration // reading the graph and creating the session, in Init

	// runOpts keeps idle RunOptions (each wraps a C object) for reuse.
	runOpts chan *ort.RunOptions
	// guess is whether runModel allocates the outputs before the run: set
	// in Init when the outputs' shapes allow it, cleared once ONNX Runtime
	// refused outputs so shaped.
	guess atomic.Bool
}

// New returns a Predictor; it loads nothing until Init.
func New() *Predictor { return &Predictor{} }

// Options read from predictor.config in cortex.yaml. Other keys (such as
// labels) are left to whoever else reads the config.
const (
	// ConfigIntraOpThreads sets how many threads one inference may use
	// (default GOMAXPROCS, which follows the container's CPU limit).
	ConfigIntraOpThreads = "intra_op_threads"
	// ConfigMaxElements bounds the tensor elements in one request (default
	// oip.DefaultMaxElements).
	ConfigMaxElements = "max_elements"
)

// Init loads the ONNX Runtime library (once per process), creates one
// session for cfg.Model and reads the model's inputs and outputs. It uses the
// CUDA execution provider when cfg.GPU > 0 and CUDA can be appended, else the
// CPU, and logs which and why.
func (p *Predictor) Init(ctx context.Context, cfg functions.Config) error {
	if cfg.Model == "" {
		return errors.New("onnx: predictor.model is empty: name the .onnx file in cortex.yaml")
	}
	threads, err := intOption(cfg.Values, ConfigIntraOpThreads, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	if p.maxElements, err = intOption(cfg.Values, ConfigMaxElements, oip.DefaultMaxElements); err != nil {
		return err
	}
	readStart := time.Now()
	inputs, outputs, err := readGraphIO(cfg.Model)
	if err != nil {
		return fmt.Errorf("onnx: reading model %s: %w", cfg.Model, err)
	}
	read := time.Since(readStart)
	if err := supported(inputs, "input"); err != nil {
		return fmt.Errorf("onnx: model %s: %w", cfg.Model, err)
	}
	if err := supported(outputs, "output"); err != nil {
		return fmt.Errorf("onnx: model %s: %w", cfg.Model, err)
	}
	if len(outputs) == 0 {
		return fmt.Errorf("onnx: model %s has no outputs", cfg.Model)
	}
	if _, err := initEnvironment(cfg.Dir); err != nil {
		return err
	}

	opts, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("onnx: session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return fmt.Errorf("onnx: setting %d intra-op threads: %w", threads, err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return fmt.Errorf("onnx: setting inter-op threads: %w", err)
	}
	p.provider = chooseProvider(opts, cfg.GPU)

	names := func(ts []tensorInfo) []string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = t.Name
		}
		return s
	}
	sessionStart := time.Now()
	session, err := ort.NewDynamicAdvancedSession(cfg.Model, names(inputs), names(outputs), opts)
	if err != nil {
		return fmt.Errorf("onnx: loading model %s: %w", cfg.Model, err)
	}
	p.load = read + time.Since(sessionStart)
	p.mu.Lock()
	p.session, p.name, p.served, p.inputs, p.outputs = session, cfg.Name, []string{cfg.Name}, inputs, outputs
	p.guess.Store(shapedOutputs(outputs))
	p.meta = metadata(cfg.Name, inputs, outputs)
	p.runOpts = make(chan *ort.RunOptions, 64)
	p.mu.Unlock()
	slog.Info("onnx: model loaded", "model", cfg.Model, "provider", p.provider, "intra_op_threads", threads,
		"inputs", describeAll(inputs), "outputs", describeAll(outputs))
	return nil
}

// chooseProvider appends the CUDA execution provider when a GPU is asked for
// and CUDA can be used, and says which provider the session will run on.
func chooseProvider(opts *ort.SessionOptions, gpus int) string {
	if gpus <= 0 {
		slog.Info("onnx: execution provider CPU (the spec asks for no GPU)")
		return "CPU"
	}
	cuda, err := ort.NewCUDAProviderOptions()
	if err == nil {
		defer cuda.Destroy()
		err = opts.AppendExecutionProviderCUDA(cuda)
	}
	if err != nil {
		slog.Warn("onnx: execution provider CPU: the spec asks for a GPU but the CUDA execution provider cannot be used",
			"gpus", gpus, "reason", err.Error())
		return "CPU"
	}
	slog.Info("onnx: execution provider CUDA", "gpus", gpus)
	return "CUDA"
}

// LoadDuration is how long Init took to load the model: reading its
// graph and creating its ONNX Runtime session (runtime.LoadTimer: the
// cold start's load phase).
func (p *Predictor) LoadDuration() time.Duration { return p.load }

// Provider returns the execution provider the session runs on: "CPU" or
// "CUDA".
func (p *Predictor) Provider() string { return p.provider }

// supported checks that every tensor's element type can be passed through.
func supported(ts []tensorInfo, kind string) error {
	for _, t := range ts {
		switch {
		case t.elemType == 0:
			return fmt.Errorf("%s %q is not a tensor (a sequence or map); the onnx predictor takes tensors only", kind, t.Name)
		case t.Datatype == "", t.Datatype == oip.FP16, t.Datatype == oip.BF16:
			return fmt.Errorf("%s %q has ONNX element type %d, which the onnx predictor does not support yet "+
				"(it supports BOOL, INT8-64, UINT8-64, FP32, FP64 and BYTES)", kind, t.Name, t.elemType)
		}
	}
	return nil
}

func describeAll(ts []tensorInfo) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

func intOption(values map[string]any, key string, def int) (int, error) {
	v, ok := values[key]
	if !ok || v == nil {
		return def, nil
	}
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case uint64:
		n = int(x)
	case float64:
		n = int(x)
		if float64(n) != x {
			return 0, fmt.Errorf("onnx: predictor.config.%s must be a whole number, got %v", key, x)
		}
	default:
		return 0, fmt.Errorf("onnx: predictor.config.%s must be a number, got %T", key, v)
	}
	if n <= 0 {
		return 0, fmt.Errorf("onnx: predictor.config.%s must be positive, got %d", key, n)
	}
	return n, nil
}

// Models returns the one model the predictor serves, named after the
// function (functions.Config.Name); none before Init.
func (p *Predictor) Models() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.served
}

// DescribeModel returns ModelMetadata: the predictor serves one model, and
// has no versions.
func (p *Predictor) DescribeModel(context.Context, string, string) (oip.ModelMetadata, error) {
	return p.ModelMetadata(), nil
}

// ModelMetadata describes the model: its inputs and outputs as the .onnx
// file declares them, for GET /v2/models/{name} and for the KServe V1
// route (which uses the first input). It is a copy the caller may keep.
func (p *Predictor) ModelMetadata() oip.ModelMetadata {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return metadata(p.name, p.inputs, p.outputs)
}

// Schema describes the function's own route, which takes the same OIP
// inference request as /v2/models/{name}/infer: the JSON Schemas of the
// model's request and response (oip.RequestSchema, oip.ResponseSchema),
// for the function's OpenAPI document and page; none before Init.
// Requests are checked in Go (see Predict), not against these.
func (p *Predictor) Schema() functions.Schema {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.session == nil {
		return functions.Schema{}
	}
	return functions.Schema{Input: oip.RequestSchema(p.meta), Output: oip.ResponseSchema(p.meta)}
}

// metadata describes a model of these inputs and outputs, in slices of
// its own.
func metadata(name string, inputs, outputs []tensorInfo) oip.ModelMetadata {
	md := oip.ModelMetadata{Name: name, Platform: "onnxruntime_onnx",
		Inputs: make([]oip.TensorMetadata, len(inputs)), Outputs: make([]oip.TensorMetadata, len(outputs))}
	for i, t := range inputs {
		md.Inputs[i] = oip.TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: slices.Clone(t.Shape)}
	}
	for i, t := range outputs {
		md.Outputs[i] = oip.TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: slices.Clone(t.Shape)}
	}
	return md
}

// Predict runs one inference request. A request that is not a
// well-formed inference request is a 400 (oip.DecodeRequest); one that
// does not fit the model (an input it lacks or does not have, a datatype
// or shape other than its own: a -1 dimension takes any size, an output
// it does not have) is one 422 that lists every misfit with its JSON path
// (oip.CheckRequest), checked in Go: no JSON Schema on this path. The
// response carries the outputs the request names, or all of them, in the
// model's order.
func (p *Predictor) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.session == nil {
		return nil, &functions.Error{Status: http.StatusServiceUnavailable, Message: "the model is not loaded"}
	}
	if err := p.checkModel(req.Model); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("onnx: inference not started: %w", context.Cause(ctx))
	}
	ir, err := oip.DecodeRequest(req.Body, p.maxElements)
	if err != nil {
		return nil, err
	}
	if err := p.check(ir); err != nil {
		return nil, err
	}
	want := p.wanted(ir)

	// Every input is the model's, once (DecodeRequest refuses repeats),
	// and every model input is there: check made sure.
	inputs := make([]ort.Value, len(p.inputs))
	defer destroyAll(inputs)
	var rows int64 // the model's first input's first dimension: the rows of a batch
	for i := range ir.Inputs {
		in := &ir.Inputs[i]
		idx := p.inputIndex(in.Name)
		if inputs[idx], err = newValue(in); err != nil {
			return nil, fmt.Errorf("onnx: input %q: %w", in.Name, err)
		}
		if idx == 0 && len(in.Shape) > 0 {
			rows = in.Shape[0]
		}
	}
	outputs, err := p.runModel(ctx, inputs, rows)
	if err != nil {
		return nil, err
	}
	defer destroyAll(outputs)

	resp := oip.InferenceResponse{ModelName: p.name, ID: ir.ID, Outputs: make([]oip.ResponseOutput, 0, len(outputs))}
	for i, v := range outputs {
		if !want[i] {
			continue
		}
		o, err := toOutput(p.outputs[i].Name, v)
		if err != nil {
			return nil, fmt.Errorf("onnx: output %q: %w", p.outputs[i].Name, err)
		}
		resp.Outputs = append(resp.Outputs, o)
	}
	body, err := resp.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("onnx: encoding response: %w", err)
	}
	return functions.Bytes(http.StatusOK, "application/json", body), nil
}

// checkModel refuses a model other than the predictor's own, for a caller
// that runs the predictor directly: through the runtime, which checks the
// model against Models first, it never does. The caller holds mu.
func (p *Predictor) checkModel(name string) error {
	if name == "" || p.name == "" || name == p.name {
		return nil
	}
	return oip.ModelNotFound(name, p.served)
}

// check returns the 422 for a request that does not fit the model
// (oip.CheckRequest), or asks for what the predictor cannot do: a scalar
// input. The caller holds mu.
func (p *Predictor) check(ir *oip.InferenceRequest) error {
	if err := oip.CheckRequest(ir, p.meta); err != nil {
		return err
	}
	var fields []functions.FieldError
	for i := range ir.Inputs {
		if len(ir.Inputs[i].Shape) == 0 {
			fields = append(fields, functions.FieldError{Path: fmt.Sprintf("$.inputs[%d].shape", i),
				Message: "scalar tensors (shape []) are not supported by the onnx predictor; send shape [1]"})
		}
	}
	if fields != nil {
		return functions.Unprocessable(fmt.Sprintf("inference request does not fit model %q", p.name), fields)
	}
	return nil
}

// wanted returns which model outputs the request asks for: every output
// it names is the model's (check made sure).
func (p *Predictor) wanted(ir *oip.InferenceRequest) []bool {
	want := make([]bool, len(p.outputs))
	if len(ir.Outputs) == 0 {
		for i := range want {
			want[i] = true
		}
		return want
	}
	for _, o := range ir.Outputs {
		for i, t := range p.outputs {
			if t.Name == o.Name {
				want[i] = true
			}
		}
	}
	return want
}

func (p *Predictor) inputIndex(name string) int {
	for i := range p.inputs {
		if p.inputs[i].Name == name {
			return i
		}
	}
	return -1
}

// run runs the session, stopping it early when ctx is done.
func (p *Predictor) run(ctx context.Context, inputs, outputs []ort.Value) error {
	if ctx.Done() == nil {
		if err := p.session.Run(inputs, outputs); err != nil {
			return fmt.Errorf("onnx: running the model: %w", err)
		}
		return nil
	}
	ro, err := p.getRunOptions()
	if err != nil {
		return err
	}
	// terminated is set, under mu, once the run is over, so a late
	// cancellation does not touch RunOptions that went back to the pool.
	var mu sync.Mutex
	over, cancelled := false, false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !over {
			cancelled = true
			ro.Terminate()
		}
	})
	err = p.session.RunWithOptions(inputs, outputs, ro)
	stop()
	mu.Lock()
	over = true
	mu.Unlock()
	p.putRunOptions(ro, cancelled)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("onnx: inference stopped: %w", context.Cause(ctx))
		}
		return fmt.Errorf("onnx: running the model: %w", err)
	}
	return nil
}

func (p *Predictor) getRunOptions() (*ort.RunOptions, error) {
	select {
	case ro := <-p.runOpts:
		return ro, nil
	default:
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: run options: %w", err)
	}
	return ro, nil
}

func (p *Predictor) putRunOptions(ro *ort.RunOptions, terminated bool) {
	if terminated {
		if err := ro.UnsetTerminate(); err != nil {
			ro.Destroy()
			return
		}
	}
	select {
	case p.runOpts <- ro:
	default:
		ro.Destroy()
	}
}

// Close releases the session. The ONNX Runtime environment stays: it is
// shared by the whole process.
func (p *Predictor) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.session == nil {
		return nil
	}
	err := p.session.Destroy()
	p.session = nil
	for {
		select {
		case ro := <-p.runOpts:
			ro.Destroy()
		default:
			return err
		}
	}
}

var (
	_ functions.Predictor      = (*Predictor)(nil)
	_ functions.Initializer    = (*Predictor)(nil)
	_ functions.Closer         = (*Predictor)(nil)
	_ oip.Catalog              = (*Predictor)(nil)
	_ functions.SchemaProvider = (*Predictor)(nil)
)
