package onnx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// The tests run the real ONNX Runtime library on the real iris sample model.
// Without the library they fail and say how to fetch it.

var irisDir = filepath.Join("..", "..", "samples", "iris")

func newIris(t testing.TB) *onnx.Predictor {
	t.Helper()
	dir, err := filepath.Abs(irisDir)
	if err != nil {
		t.Fatal(err)
	}
	p := onnx.New()
	cfg := functions.Config{Name: "iris", Dir: dir, Model: filepath.Join(dir, "model", "iris.onnx"),
		Values: map[string]any{"labels": []any{"setosa", "versicolor", "virginica"}}}
	if err := p.Init(context.Background(), cfg); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func predict(t testing.TB, p *onnx.Predictor, body string) *oip.InferenceResponse {
	t.Helper()
	resp, err := p.Predict(context.Background(), &functions.Request{Method: "POST", Path: "/predict", Body: []byte(body)})
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	if got := resp.ContentType(); got != "application/json" {
		t.Errorf("content type: got %q, want application/json", got)
	}
	out, err := oip.DecodeResponse(resp.Body)
	if err != nil {
		t.Fatalf("decoding %s: %v", resp.Body, err)
	}
	return out
}

func TestPredict(t *testing.T) {
	p := newIris(t)
	out := predict(t, p, `{"id":"r1","inputs":[{"name":"input","shape":[3,4],"datatype":"FP32",
		"data":[[5.1,3.5,1.4,0.2],[7.0,3.2,4.7,1.4],[6.3,3.3,6.0,2.5]]}]}`)
	if out.ModelName != "iris" || out.ID != "r1" {
		t.Errorf("model_name, id: got %q, %q, want iris, r1", out.ModelName, out.ID)
	}
	if len(out.Outputs) != 2 || out.Outputs[0].Name != "label" || out.Outputs[1].Name != "probabilities" {
		t.Fatalf("outputs: got %+v, want label then probabilities", out.Outputs)
	}
	label, _ := oip.Values[int64](out.Outputs[0].Data)
	if want := []int64{0, 1, 2}; !reflect.DeepEqual(label, want) || !reflect.DeepEqual(out.Outputs[0].Shape, []int64{3}) {
		t.Errorf("label: got %v %v, want [3] %v", out.Outputs[0].Shape, label, want)
	}
	prob, _ := oip.Values[float32](out.Outputs[1].Data)
	if !reflect.DeepEqual(out.Outputs[1].Shape, []int64{3, 3}) || len(prob) != 9 {
		t.Fatalf("probabilities: got shape %v with %d values, want [3 3]", out.Outputs[1].Shape, len(prob))
	}
	for r := 0; r < 3; r++ {
		row := prob[3*r : 3*r+3]
		sum := row[0] + row[1] + row[2]
		if math.Abs(float64(sum)-1) > 1e-5 {
			t.Errorf("row %d: probabilities %v sum to %v, want 1", r, row, sum)
		}
		if best := argmax(row); best != int(label[r]) {
			t.Errorf("row %d: label %d but highest probability at %d", r, label[r], best)
		}
	}
}

func argmax(s []float32) int {
	best := 0
	for i, v := range s {
		if v > s[best] {
			best = i
		}
	}
	return best
}

func TestPredictRequestedOutput(t *testing.T) {
	p := newIris(t)
	out := predict(t, p, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}],"outputs":[{"name":"probabilities"}]}`)
	if len(out.Outputs) != 1 || out.Outputs[0].Name != "probabilities" {
		t.Errorf("got outputs %+v, want probabilities only", out.Outputs)
	}
}

func TestPredictErrors(t *testing.T) {
	p := newIris(t)
	tests := []struct {
		name   string
		body   string
		model  string
		status int
		want   []string
	}{
		{"empty body", ``, "", 400, []string{"empty"}},
		{"malformed JSON", `{"inputs": [{"name": "input",`, "", 400, []string{"invalid JSON"}},
		{"wrong name", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, "", 422,
			[]string{`$.inputs[0].name: "x" is not an input of the model; its inputs are "input" FP32 [-1,4]`, `$.inputs: missing input "input" (FP32 [-1,4])`}},
		{"wrong shape", `{"inputs":[{"name":"input","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}]}`, "", 422,
			[]string{`inference request does not fit model "iris": $.inputs[0].shape: [1,5] does not match the model's [-1,4] (-1 takes any size)`}},
		{"wrong rank", `{"inputs":[{"name":"input","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}`, "", 422,
			[]string{`$.inputs[0].shape: [4] does not match the model's [-1,4]`}},
		{"wrong datatype", `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`, "", 422,
			[]string{`$.inputs[0].datatype: FP64 does not match the model's FP32`}},
		{"element count", `{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[1,2,3,4]}]}`, "", 400,
			[]string{`input "input": shape [2 4] needs 8 elements, got 4`}},
		{"unknown output", `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"logits"}]}`, "", 422,
			[]string{`$.outputs[0].name: "logits" is not an output of the model; its outputs are "label", "probabilities"`}},
		{"missing input", `{"inputs":[{"name":"other","shape":[1],"datatype":"FP32","data":[1]}]}`, "", 422,
			[]string{`$.inputs[0].name: "other" is not an input`, `$.inputs: missing input "input"`}},
		{"every misfit at once", `{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP64","data":[1,2,3]},{"name":"mask","shape":[1],"datatype":"BOOL","data":[true]}],"outputs":[{"name":"logits"}]}`, "", 422,
			[]string{`inference request does not fit model "iris": $.inputs[0].datatype: FP64 does not match the model's FP32; ` +
				`$.inputs[0].shape: [1,3] does not match the model's [-1,4] (-1 takes any size); ` +
				`$.inputs[1].name: "mask" is not an input of the model; its inputs are "input" FP32 [-1,4]; ` +
				`$.outputs[0].name: "logits" is not an output of the model; its outputs are "label", "probabilities"`}},
		{"other model", `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, "mnist", 404,
			[]string{`model "mnist" not found`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Predict(context.Background(), &functions.Request{Body: []byte(tt.body), Model: tt.model, Protocol: functions.ProtocolOIP})
			if err == nil {
				t.Fatal("got no error")
			}
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status != tt.status {
				t.Fatalf("got %v, want a %d *functions.Error", err, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(fe.Message, w) {
					t.Errorf("message %q does not contain %q", fe.Message, w)
				}
			}
			// A 422 lists its misfits for a form, as its message does.
			if (fe.Status == http.StatusUnprocessableEntity) != (len(fe.Fields) > 0) {
				t.Errorf("status %d with fields %v: a 422, and only a 422, lists fields", fe.Status, fe.Fields)
			}
			for _, f := range fe.Fields {
				if !strings.Contains(fe.Message, f.Path+": "+f.Message) {
					t.Errorf("field %+v is not in the message %q", f, fe.Message)
				}
			}
		})
	}
}

func TestPredictCancelled(t *testing.T) {
	p := newIris(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Predict(ctx, &functions.Request{Body: []byte(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestPredictConcurrent(t *testing.T) {
	p := newIris(t)
	rows := [][]float32{{5.1, 3.5, 1.4, 0.2}, {7.0, 3.2, 4.7, 1.4}, {6.3, 3.3, 6.0, 2.5}}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := 0; i < 100; i++ {
				class := (g + i) % 3
				body := fmt.Sprintf(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":%s}],"outputs":[{"name":"label"}]}`, jsonOf(rows[class]))
				resp, err := p.Predict(ctx, &functions.Request{Body: []byte(body)})
				if err != nil {
					errs <- err
					return
				}
				want := fmt.Sprintf(`"data":[%d]`, class)
				if !strings.Contains(string(resp.Body), want) {
					errs <- fmt.Errorf("goroutine %d request %d: got %s, want %s", g, i, resp.Body, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestModelMetadata(t *testing.T) {
	p := newIris(t)
	want := oip.ModelMetadata{
		Name:     "iris",
		Platform: "onnxruntime_onnx",
		Inputs:   []oip.TensorMetadata{{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 4}}},
		Outputs: []oip.TensorMetadata{
			{Name: "label", Datatype: oip.INT64, Shape: []int64{-1}},
			{Name: "probabilities", Datatype: oip.FP32, Shape: []int64{-1, 3}},
		},
	}
	if got := p.ModelMetadata(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := p.Provider(); got != "CPU" {
		t.Errorf("provider: got %q, want CPU", got)
	}
}

// TestGraphIOMatchesRuntime checks the predictor's own reading of the model
// file against what ONNX Runtime reports.
func TestGraphIOMatchesRuntime(t *testing.T) {
	p := newIris(t) // loads the library
	ins, outs, err := ort.GetInputOutputInfo(filepath.Join(irisDir, "model", "iris.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	md := p.ModelMetadata()
	check := func(kind string, got []oip.TensorMetadata, want []ort.InputOutputInfo) {
		if len(got) != len(want) {
			t.Fatalf("%s: got %d, ONNX Runtime says %d", kind, len(got), len(want))
		}
		for i := range want {
			if got[i].Name != want[i].Name || !reflect.DeepEqual(got[i].Shape, []int64(want[i].Dimensions)) {
				t.Errorf("%s %d: got %s %v, ONNX Runtime says %s %v", kind, i, got[i].Name, got[i].Shape, want[i].Name, want[i].Dimensions)
			}
		}
	}
	check("inputs", md.Inputs, ins)
	check("outputs", md.Outputs, outs)
}

func TestInitErrors(t *testing.T) {
	dir := t.TempDir()
	notONNX := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(notONNX, []byte("this is not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  functions.Config
		want string
	}{
		{"no model", functions.Config{Name: "x"}, "predictor.model is empty"},
		{"missing file", functions.Config{Name: "x", Model: filepath.Join(dir, "nope.onnx")}, "no such file"},
		{"not a model", functions.Config{Name: "x", Model: notONNX}, "reading model"},
		{"bad threads", functions.Config{Name: "x", Model: notONNX, Values: map[string]any{"intra_op_threads": "many"}}, "intra_op_threads must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := onnx.New().Init(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestFindLibraryMissing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(onnx.LibraryEnv, filepath.Join(dir, "env", "libonnxruntime.so.1"))
	t.Setenv("CORTEX_CACHE", filepath.Join(dir, "cache"))
	fnDir := filepath.Join(dir, "fn")
	_, err := onnx.FindLibrary(fnDir)
	if !errors.Is(err, onnx.ErrLibraryNotFound) {
		t.Fatalf("got %v, want ErrLibraryNotFound", err)
	}
	for _, want := range []string{
		filepath.Join(dir, "env", "libonnxruntime.so.1"),
		filepath.Join(fnDir, "lib", "libonnxruntime.so.1"),
		filepath.Join(dir, "cache", "onnxruntime", onnx.Version, "libonnxruntime.so.1"),
		"cortex setup", "make setup",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestFindLibraryOrder(t *testing.T) {
	dir := t.TempDir()
	fnLib := filepath.Join(dir, "fn", "lib", onnx.LibraryName)
	cacheLib := filepath.Join(dir, "cache", "onnxruntime", onnx.Version, onnx.LibraryName)
	for _, p := range []string{fnLib, cacheLib} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(onnx.LibraryEnv, "")
	t.Setenv("CORTEX_CACHE", filepath.Join(dir, "cache"))
	if got, err := onnx.FindLibrary(filepath.Join(dir, "fn")); err != nil || got != fnLib {
		t.Errorf("got %q, %v, want the function's lib/ %q", got, err, fnLib)
	}
	if got, err := onnx.FindLibrary(filepath.Join(dir, "elsewhere")); err != nil || got != cacheLib {
		t.Errorf("got %q, %v, want the cache %q", got, err, cacheLib)
	}
	t.Setenv(onnx.LibraryEnv, cacheLib)
	if got, err := onnx.FindLibrary(filepath.Join(dir, "fn")); err != nil || got != cacheLib {
		t.Errorf("with $%s: got %q, %v, want %q", onnx.LibraryEnv, got, err, cacheLib)
	}
}

func BenchmarkPredict(b *testing.B) {
	p := newIris(b)
	for _, n := range []int{1, 32} {
		rows := make([][]float32, n)
		for i := range rows {
			rows[i] = []float32{5.1, 3.5, 1.4, 0.2}
		}
		body := []byte(fmt.Sprintf(`{"inputs":[{"name":"input","shape":[%d,4],"datatype":"FP32","data":%s}]}`, n, jsonOf(rows)))
		req := &functions.Request{Method: "POST", Path: "/predict", Body: body}
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("rows=%d/parallel", n), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Predict(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestOutputsShapedBeforeTheRun: iris's outputs ([-1] and [-1, 3]) are
// allocated before the run, with the request's rows; a predictor misled
// about an output's shape (as by a model whose dynamic first output
// dimension is not its rows) is refused by ONNX Runtime, answers the same
// from a second run whose outputs ONNX Runtime allocates, and stops
// guessing.
func TestOutputsShapedBeforeTheRun(t *testing.T) {
	body := `{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,6.3,3.3,6.0,2.5]}]}`
	p := newIris(t)
	want := jsonOf(predict(t, p, body))
	if !onnx.GuessesOutputs(p) {
		t.Fatal("iris's outputs were not shaped before the run")
	}
	misled := newIris(t)
	onnx.SetOutputShape(misled, 1, []int64{-1, 4})
	for i := range 2 {
		if got := jsonOf(predict(t, misled, body)); got != want {
			t.Errorf("misled predictor, prediction %d: %s, want %s", i+1, got, want)
		}
		if onnx.GuessesOutputs(misled) {
			t.Errorf("prediction %d: the predictor still guesses after ONNX Runtime refused its outputs", i+1)
		}
	}
}
