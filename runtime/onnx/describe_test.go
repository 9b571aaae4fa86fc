package onnx_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// TestDescribeIris checks what an ONNX function says about itself: its
// model's metadata, and the schema of its own route, the model's OIP
// request, which every example of the iris sample that the server takes
// fits.
func TestDescribeIris(t *testing.T) {
	dir, err := filepath.Abs(irisDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := runtime.Config{Name: "iris", Dir: dir, Predictor: runtime.PredictorConfig{Type: "onnx", Model: "model/iris.onnx"}}
	rt, err := runtime.New(onnx.New(), cfg, runtime.WithLogger(repoLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if d := rt.Describe(context.Background()); d.Ready || d.Models != nil || d.Schema.Input != nil {
		t.Errorf("before Start: %+v; want not ready, and no models or schema yet", d)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	d := rt.Describe(context.Background())
	want := oip.ModelMetadata{Name: "iris", Platform: "onnxruntime_onnx",
		Inputs:  []oip.TensorMetadata{{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 4}}},
		Outputs: []oip.TensorMetadata{{Name: "label", Datatype: oip.INT64, Shape: []int64{-1}}, {Name: "probabilities", Datatype: oip.FP32, Shape: []int64{-1, 3}}}}
	if !d.Ready || len(d.Models) != 1 || !sameMetadata(d.Models[0], want) {
		t.Fatalf("after Start: ready %v, models %+v; want %+v", d.Ready, d.Models, want)
	}
	if string(d.Schema.Input) != string(oip.RequestSchema(want)) || string(d.Schema.Output) != string(oip.ResponseSchema(want)) {
		t.Errorf("schema %s, want the model's OIP request", d.Schema.Input)
	}
	v, err := functions.NewValidator(d.Schema.Input)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{repoRow, irisBody(irisRow(1), irisRow(2)),
		`{"id": "b", "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4]]}]}`} {
		if err := v.Check([]byte(body)); err != nil {
			t.Errorf("a request the server takes fails the published schema: %v\n%s", err, body)
		}
	}
}

func sameMetadata(a, b oip.ModelMetadata) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestDescribeRepository checks that a function serving several models
// describes each.
func TestDescribeRepository(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "samples", "iris-multi"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := runtime.Config{Name: "iris-multi", Dir: dir, Predictor: runtime.PredictorConfig{Type: "onnx", ModelsDir: "models"}}
	rt, err := runtime.New(onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(-1)), cfg, runtime.WithLogger(repoLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	d := rt.Describe(context.Background())
	var names []string
	for _, m := range d.Models {
		names = append(names, m.Name)
		if len(m.Inputs) != 1 || m.Inputs[0].Name != "input" {
			t.Errorf("model %s: inputs %+v", m.Name, m.Inputs)
		}
	}
	if !slices.Equal(names, rt.Models()) || len(names) != 2 {
		t.Errorf("described %q, want every model served: %q", names, rt.Models())
	}
}

// TestIrisMisfitsOverHTTP sends the iris function a request that misfits
// its model four ways: one 422 lists all four, in the message and in the
// body's fields.
func TestIrisMisfitsOverHTTP(t *testing.T) {
	srv := serveIris(t)
	body := `{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [5.1, 3.5, 1.4]},
		{"name": "mask", "shape": [1], "datatype": "BOOL", "data": [true]}], "outputs": [{"name": "logits"}]}`
	want := []functions.FieldError{
		{Path: "$.inputs[0].datatype", Message: "FP64 does not match the model's FP32"},
		{Path: "$.inputs[0].shape", Message: "[1,3] does not match the model's [-1,4] (-1 takes any size)"},
		{Path: "$.inputs[1].name", Message: `"mask" is not an input of the model; its inputs are "input" FP32 [-1,4]`},
		{Path: "$.outputs[0].name", Message: `"logits" is not an output of the model; its outputs are "label", "probabilities"`},
	}
	for _, path := range []string{"/predict", "/v2/models/iris/infer"} {
		got := repoCall(t, "POST", srv.URL+path, body)
		var e struct {
			Error  string                 `json:"error"`
			Fields []functions.FieldError `json:"fields"`
		}
		if err := json.Unmarshal([]byte(got.raw), &e); err != nil || got.status != http.StatusUnprocessableEntity {
			t.Fatalf("POST %s: %d %s, want a 422", path, got.status, got.raw)
		}
		if !slices.Equal(e.Fields, want) {
			t.Errorf("POST %s: fields\ngot  %q\nwant %q", path, e.Fields, want)
		}
		if !strings.HasPrefix(e.Error, `inference request does not fit model "iris": $.inputs[0].datatype: FP64`) || strings.Count(e.Error, "; $.") != 3 {
			t.Errorf("POST %s: error %q", path, e.Error)
		}
	}
}
