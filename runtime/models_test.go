package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/runtime"
)

// The tests in this file hold the runtime to being the one model
// catalogue of a function: it checks the model every route names against
// the predictor's oip.Catalog, describes the models with it, and converts
// KServe V1 requests with the metadata of the model each one names.

// zoo is a Go predictor with a catalog, found in Init (which waits for
// release when it is set):
//
//	a       input "x" FP32 [-1 2], versions 1 and 2
//	b       input "y" INT64 [-1 1], no versions
//	blank   no tensor metadata: it takes KServe V1 as it comes
//	broken  its description fails with an error that has no status
//
// Predict answers an OIP request with its first input as the output and
// keeps the request it saw.
type zoo struct {
	release chan struct{}

	mu     sync.Mutex
	models []string
	last   *functions.Request
}

func (z *zoo) Init(context.Context, functions.Config) error {
	if z.release != nil {
		<-z.release
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.models = []string{"a", "b", "blank", "broken"}
	return nil
}

func (z *zoo) Models() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.models
}

func (z *zoo) DescribeModel(_ context.Context, name, version string) (oip.ModelMetadata, error) {
	switch name {
	case "a":
		if version != "" && version != "1" && version != "2" {
			return oip.ModelMetadata{}, functions.Errorf(http.StatusNotFound, "model %q has no version %q", name, version)
		}
		return oip.ModelMetadata{Platform: "zoo", Versions: []string{"1", "2"},
			Inputs: []oip.TensorMetadata{{Name: "x", Datatype: oip.FP32, Shape: []int64{-1, 2}}}}, nil
	case "b":
		return oip.ModelMetadata{Platform: "zoo",
			Inputs: []oip.TensorMetadata{{Name: "y", Datatype: oip.INT64, Shape: []int64{-1, 1}}}}, nil
	case "broken":
		return oip.ModelMetadata{}, errors.New("disk on fire")
	}
	return oip.ModelMetadata{Platform: "zoo"}, nil
}

func (z *zoo) Predict(_ context.Context, req *functions.Request) (*functions.Response, error) {
	z.mu.Lock()
	z.last = req
	z.mu.Unlock()
	if req.Protocol == functions.ProtocolKServeV1 {
		return functions.Text(http.StatusOK, "V1 as it came: "+string(req.Body)), nil
	}
	ir, err := oip.DecodeRequest(req.Body)
	if err != nil {
		return nil, err
	}
	in := ir.Inputs[0]
	resp := oip.InferenceResponse{ModelName: req.Model, Outputs: []oip.ResponseOutput{
		{Name: in.Name, Shape: in.Shape, Datatype: in.Datatype, Data: in.Data}}}
	body, err := resp.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return functions.Bytes(http.StatusOK, "application/json", body), nil
}

// lastInput is the name and datatype of the first input of the OIP
// request the predictor saw last.
func (z *zoo) lastInput(t *testing.T) string {
	t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.last == nil || z.last.Protocol != functions.ProtocolOIP {
		t.Fatalf("the predictor saw %+v, want an OIP request", z.last)
	}
	ir, err := oip.DecodeRequest(z.last.Body)
	if err != nil {
		t.Fatal(err)
	}
	return ir.Inputs[0].Name + " " + string(ir.Inputs[0].Datatype)
}

func newZoo(t *testing.T, z *zoo) (*runtime.Runtime, string) {
	t.Helper()
	rt, err := runtime.New(z, runtime.Config{Name: "zoo-fn"}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	return rt, serve(t, rt)
}

const zooServes = `this function serves \"a\", \"b\", \"blank\", \"broken\"`

func TestModelCatalog(t *testing.T) {
	z := &zoo{}
	rt, base := newZoo(t, z)
	waitFor(t, rt.Ready)

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // the body, or with a trailing "..." its start
		input                    string // the input the predictor saw, when it saw one
	}{
		{"metadata", "GET", "/v2/models/a", "", 200,
			`{"name":"a","versions":["1","2"],"platform":"zoo","inputs":[{"name":"x","datatype":"FP32","shape":[-1,2]}],"outputs":null}`, ""},
		{"metadata of a version the catalog refuses", "GET", "/v2/models/a/versions/9", "", 404,
			`{"error":"model \"a\" has no version \"9\""}`, ""},
		{"metadata of a model without versions, by version", "GET", "/v2/models/b/versions/3", "", 200,
			`{"name":"b","versions":["3"],"platform":"zoo","inputs":[{"name":"y","datatype":"INT64","shape":[-1,1]}],"outputs":null}`, ""},
		{"metadata of an unknown model", "GET", "/v2/models/rose", "", 404,
			`{"error":"model \"rose\" not found; ` + zooServes + `"}`, ""},
		{"readiness of an unknown model", "GET", "/v2/models/rose/ready", "", 404,
			`{"error":"model \"rose\" not found; ` + zooServes + `"}`, ""},
		{"V1 status of an unknown model", "GET", "/v1/models/rose", "", 404,
			`{"error":"model \"rose\" not found; ` + zooServes + `"}`, ""},
		{"OIP inference, unknown model", "POST", "/v2/models/rose/infer", `{}`, 404,
			`{"error":"model \"rose\" not found; ` + zooServes + `"}`, ""},
		{"?model= on the function's own route is checked too", "POST", "/predict?model=rose", `{}`, 404,
			`{"error":"model \"rose\" not found; ` + zooServes + `"}`, ""},
		{"V1 with the named model's input", "POST", "/v1/models/b:predict", `{"instances": [[7], [8]]}`, 200,
			`{"predictions":[[7],[8]]}`, "y INT64"},
		{"V1 with another model's input", "POST", "/v1/models/a:predict", `{"instances": [[1.5, 2]]}`, 200,
			`{"predictions":[[1.5,2]]}`, "x FP32"},
		{"V1 to a model without tensor metadata", "POST", "/v1/models/blank:predict", `{"instances": [1]}`, 200,
			`V1 as it came: {"instances": [1]}`, ""},
		{"V1 that does not fit the model's input", "POST", "/v1/models/b:predict", `{"instances": [[1.5]]}`, 400,
			`{"error":"instances: ...`, ""},
		{"V1 to a model whose description fails", "POST", "/v1/models/broken:predict", `{"instances": [[1]]}`, 500,
			`{"error":"internal error (request id ...`, ""},
		{"a wrong path suggests the first model", "POST", "/nope", `{}`, 404,
			`{"error":"no route for POST /nope: send predictions to POST /predict, POST /v2/models/a/infer or POST /v1/models/a:predict"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.method, base+tt.path, "application/json", strings.NewReader(tt.body))
			prefix, isPrefix := strings.CutSuffix(tt.want, "...")
			if a.status != tt.status || (isPrefix && !strings.HasPrefix(a.body, prefix)) || (!isPrefix && a.body != tt.want) {
				t.Errorf("%s %s: got %d %s\nwant %d %s", tt.method, tt.path, a.status, a.body, tt.status, tt.want)
			}
			if strings.Contains(a.body, "disk on fire") {
				t.Errorf("the answer %s carries an error's text without a status", a.body)
			}
			if tt.input != "" {
				if got := z.lastInput(t); got != tt.input {
					t.Errorf("the predictor saw input %q, want %q", got, tt.input)
				}
			}
		})
	}
	if got := rejected(t, rt, "unknown_model"); got != 2 {
		t.Errorf("cortex_requests_rejected_total{reason=\"unknown_model\"} = %v, want 2 (the two predictions)", got)
	}
}

// TestModelCatalogBeforeInit: a predictor whose catalog lists its models
// in Init has none before, and every model route answers 503 with
// Retry-After until it has, unknown models included, rather than 404 for a
// model that may yet load.
func TestModelCatalogBeforeInit(t *testing.T) {
	z := &zoo{release: make(chan struct{})}
	rt, base := newZoo(t, z)
	released := false
	defer func() {
		if !released {
			close(z.release)
		}
	}()
	if got := rt.Models(); len(got) != 0 {
		t.Errorf("Models before Init: got %q, want none", got)
	}
	for _, path := range []string{"/v2/models/a", "/v2/models/a/ready", "/v2/models/rose", "/v1/models/a"} {
		a := do(t, "GET", base+path, "", nil)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "1" {
			t.Errorf("GET %s before Init: got %d (Retry-After %q) %s, want 503 with Retry-After 1", path, a.status, a.header.Get("Retry-After"), a.body)
		}
	}
	close(z.release)
	released = true
	waitFor(t, rt.Ready)
	if got, want := rt.Models(), []string{"a", "b", "blank", "broken"}; !slices.Equal(got, want) {
		t.Errorf("Models after Init: got %q, want %q", got, want)
	}
	if err := rt.CheckModel("b"); err != nil {
		t.Errorf("CheckModel(b): %v", err)
	}
}

// TestModelWithoutCatalog: a predictor without a catalog serves one model,
// named after the function, described by name alone.
func TestModelWithoutCatalog(t *testing.T) {
	rt := newRuntime(t, functions.PredictorFunc(func(context.Context, *functions.Request) (*functions.Response, error) {
		return functions.Text(http.StatusOK, "ok"), nil
	}), runtime.Limits{})
	name := rt.Name()
	if got := rt.Models(); !slices.Equal(got, []string{name}) {
		t.Errorf("Models: got %q, want [%q]", got, name)
	}
	err := rt.CheckModel("rose")
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusNotFound || fe.Message != `model "rose" not found; this function serves "`+name+`"` {
		t.Errorf("CheckModel(rose): got %v, want the 404 naming %q", err, name)
	}
	md, err := rt.DescribeModel(context.Background(), name, "4")
	if err != nil || md.Name != name || md.Platform != "cortex" || !slices.Equal(md.Versions, []string{"4"}) || md.Inputs != nil {
		t.Errorf("DescribeModel: got %+v, %v; want %q on platform cortex, version 4, no tensors", md, err, name)
	}
}

// garden is a Go predictor that serves two models and says so.
type garden struct{ functions.PredictorFunc }

func (garden) Models() []string { return []string{"iris", "tulip"} }

func (garden) DescribeModel(context.Context, string, string) (oip.ModelMetadata, error) {
	return oip.ModelMetadata{Platform: "garden",
		Inputs: []oip.TensorMetadata{{Name: "petals", Datatype: oip.FP32, Shape: []int64{-1, 4}}}}, nil
}

// A predictor says which models it serves by implementing oip.Catalog;
// the runtime then answers for them on every carrier.
func ExampleRuntime_CheckModel() {
	rt, err := runtime.New(garden{}, runtime.Config{Name: "flowers"}, runtime.WithLogger(quietLogger()))
	if err != nil {
		panic(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(rt.Models())
	fmt.Println(rt.CheckModel("tulip"))
	fmt.Println(rt.CheckModel("rose"))
	md, _ := rt.DescribeModel(context.Background(), "tulip", "")
	fmt.Println(md.Name, md.Platform, md.Inputs)
	// Output:
	// [iris tulip]
	// <nil>
	// 404 Not Found: model "rose" not found; this function serves "iris", "tulip"
	// tulip garden ["petals" FP32 [-1 4]]
}

// shelf is a catalog whose descriptions misbehave, each model its own way:
//
//	gated   counts the descriptions running at once, and waits for gate
//	panics  panics
//	slow    loads until its context ends, and says so
//	deaf    waits for release, deaf to its context
//
// Predict answers an OIP request with its first input as the output.
type shelf struct {
	gate, release chan struct{}
	described     atomic.Int32 // descriptions of gated begun
	active, most  atomic.Int32 // of gated: running now, and at most
}

func newShelf() *shelf { return &shelf{gate: make(chan struct{}), release: make(chan struct{})} }

func (*shelf) Models() []string { return []string{"deaf", "gated", "panics", "slow"} }

func (s *shelf) DescribeModel(ctx context.Context, name, _ string) (oip.ModelMetadata, error) {
	switch name {
	case "gated":
		s.described.Add(1)
		n := s.active.Add(1)
		defer s.active.Add(-1)
		for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
		}
		select {
		case <-s.gate:
		case <-ctx.Done():
			return oip.ModelMetadata{}, ctx.Err()
		}
	case "panics":
		panic("the catalog is on fire")
	case "slow":
		<-ctx.Done()
		return oip.ModelMetadata{}, fmt.Errorf("loading model %q: %w", name, context.Cause(ctx))
	case "deaf":
		<-s.release
	}
	return oip.ModelMetadata{Platform: "shelf",
		Inputs: []oip.TensorMetadata{{Name: "x", Datatype: oip.FP32, Shape: []int64{-1, 1}}}}, nil
}

func (*shelf) Predict(_ context.Context, req *functions.Request) (*functions.Response, error) {
	return (&zoo{}).Predict(context.Background(), req)
}

func v1Request(model string) *functions.Request {
	return &functions.Request{Method: "POST", Protocol: functions.ProtocolKServeV1, Model: model,
		ContentType: "application/json", Body: []byte(`{"instances": [[1], [2]]}`)}
}

func newShelfRuntime(t *testing.T, s *shelf, limits runtime.Limits) *runtime.Runtime {
	t.Helper()
	rt := newRuntime(t, s, limits)
	t.Cleanup(func() {
		if err := rt.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return rt
}

// TestDescribePanicIsAnInternalError: a catalog's DescribeModel runs as
// the predictor does, with panics recovered: a KServe V1 request whose
// description panics is a 500 naming its request id, as a model route's
// metadata is, and the function goes on serving.
func TestDescribePanicIsAnInternalError(t *testing.T) {
	s := newShelf()
	close(s.gate)
	rt := newShelfRuntime(t, s, runtime.Limits{})

	req := v1Request("panics")
	_, err := rt.Invoke(context.Background(), req)
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusInternalServerError || req.ID == "" || !strings.Contains(fe.Message, "(request id "+req.ID+")") {
		t.Errorf("V1 request whose description panics: got %v, want a 500 naming request id %q", err, req.ID)
	}
	if _, err := rt.DescribeModel(context.Background(), "panics", ""); functions.StatusOf(err) != http.StatusInternalServerError ||
		!errors.As(err, &fe) || !strings.Contains(fe.Message, "request id") {
		t.Errorf("metadata of a model whose description panics: got %v, want a 500 with a request id", err)
	}

	resp, err := rt.Invoke(context.Background(), v1Request("gated"))
	if err != nil || string(resp.Body) != `{"predictions":[[1],[2]]}` {
		t.Errorf("a V1 request after the panics: got %v %v, want the predictions", resp, err)
	}
	if err := rt.Live(); err != nil || !rt.Ready() || rt.Overrunning() != 0 {
		t.Errorf("after the panics: Live %v, Ready %v, %d overrunning; want a function that goes on serving", err, rt.Ready(), rt.Overrunning())
	}
	// The slots come back (the gauge falls just after the answer is sent).
	waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_in_flight") == 0 })
}

// TestSlowDescribeIsATimeout: describing a model may load it, within the
// prediction's deadline: a description still running at limits.timeout is
// the 504 of a slow prediction, whether it gives up on its context (the
// error wraps the context's) or never looks at it.
func TestSlowDescribeIsATimeout(t *testing.T) {
	s := newShelf()
	close(s.gate)
	rt := newShelfRuntime(t, s, runtime.Limits{Timeout: runtime.Duration(100 * time.Millisecond), OverrunGrace: runtime.Duration(time.Hour)})

	for _, model := range []string{"slow", "deaf"} {
		start := time.Now()
		_, err := rt.Invoke(context.Background(), v1Request(model))
		if got := functions.StatusOf(err); got != http.StatusGatewayTimeout {
			t.Errorf("V1 request to %s, whose description outlasts limits.timeout: got %d (%v), want 504", model, got, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("V1 request to %s: answered after %s, want about limits.timeout", model, took)
		}
	}
	if _, err := rt.DescribeModel(context.Background(), "slow", ""); functions.StatusOf(err) != http.StatusGatewayTimeout {
		t.Errorf("metadata of a model whose description outlasts limits.timeout: got %v, want 504", err)
	}
	waitFor(t, func() bool { return rt.Overrunning() == 1 }) // deaf, as a deaf prediction would be
	close(s.release)
	waitFor(t, func() bool { return rt.Overrunning() == 0 })
	if resp, err := rt.Invoke(context.Background(), v1Request("deaf")); err != nil || resp.StatusCode() != http.StatusOK {
		t.Errorf("V1 request to deaf once it answers: got %v %v, want 200", resp, err)
	}
}

// TestDescribeTakesASlot: descriptions of concurrent KServe V1 requests
// (loads, for a repository) run within limits.max_concurrency: those
// beyond it wait in the queue, not all describing at once.
func TestDescribeTakesASlot(t *testing.T) {
	s := newShelf()
	rt := newShelfRuntime(t, s, runtime.Limits{MaxConcurrency: 2, MaxQueue: 8, Timeout: runtime.Duration(time.Minute)})

	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := rt.Invoke(context.Background(), v1Request("gated"))
			if err == nil && string(resp.Body) != `{"predictions":[[1],[2]]}` {
				err = fmt.Errorf("got %s", resp.Body)
			}
			errs <- err
		})
	}
	waitFor(t, func() bool { return s.active.Load() == 2 && gaugeValue(t, rt, "cortex_requests_queued") == n-2 })
	time.Sleep(50 * time.Millisecond) // time for a description that should not run to begin
	if got := s.described.Load(); got != 2 {
		t.Errorf("%d descriptions began with max_concurrency 2 and %d requests, want 2 (the rest queued)", got, n)
	}
	close(s.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a queued V1 request: %v", err)
		}
	}
	if got, most := s.described.Load(), s.most.Load(); got != n || most != 2 {
		t.Errorf("%d descriptions, at most %d at once; want %d, at most 2", got, most, n)
	}
}

// TestDescribeDuringDrain: a runtime that is shutting down describes no
// more models (which may load them) than it predicts.
func TestDescribeDuringDrain(t *testing.T) {
	s := newShelf()
	close(s.gate)
	rt := newRuntime(t, s, runtime.Limits{})
	if err := rt.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := s.described.Load()
	for _, err := range []error{
		func() error { _, err := rt.Invoke(context.Background(), v1Request("gated")); return err }(),
		func() error { _, err := rt.DescribeModel(context.Background(), "gated", ""); return err }(),
	} {
		if functions.StatusOf(err) != http.StatusServiceUnavailable {
			t.Errorf("after Shutdown: got %v, want 503", err)
		}
	}
	if got := s.described.Load(); got != before {
		t.Errorf("the catalog described %d models after Shutdown, want none", got-before)
	}
}

// empty is a catalog that serves no models (a repository whose models
// were all removed).
type empty struct{ functions.PredictorFunc }

func (empty) Models() []string { return nil }

func (empty) DescribeModel(context.Context, string, string) (oip.ModelMetadata, error) {
	return oip.ModelMetadata{}, errors.New("no models")
}

// TestModelCatalogEmpty: a ready function whose catalog lists no models
// answers a model's name with a 404 that says it serves none.
func TestModelCatalogEmpty(t *testing.T) {
	rt := newRuntime(t, empty{}, runtime.Limits{})
	_, err := rt.Invoke(context.Background(), v1Request("rose"))
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusNotFound || fe.Message != `model "rose" not found; this function serves no models at the moment` {
		t.Errorf("a request for a model of a function that serves none: got %v, want the 404 saying it serves none", err)
	}
}
