package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

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
