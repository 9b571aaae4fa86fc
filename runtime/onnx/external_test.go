package onnx_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// The external-data tests build the smallest model that takes its weights
// from a .data file beside it, as models over protobuf's 2 GB limit do:
// Y = X·W + B with X [1,4], W [4,3] and B [3], written with protowire
// twice, once with the weights inside (raw_data) and once with them in
// weights.data (TensorProto.data_location EXTERNAL; W at offset 0, B after
// it). Both forms must load and give the same outputs: ONNX Runtime finds
// the data file relative to the model's path, which the predictor hands it.

var (
	linearW = []float32{0.5, -1, 2, 0.25, 3, -0.75, -2, 1.5, 0.125, 1, 0, -3}
	linearB = []float32{0.1, -0.2, 0.3}
)

// writeLinearModel writes the model into dir as model.onnx; with external,
// its weights go to dir/weights.data.
func writeLinearModel(t testing.TB, dir string, external bool) string {
	t.Helper()
	var data []byte
	tensor := func(name string, dims []int64, vals []float32) []byte {
		raw := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		var b []byte
		for _, d := range dims {
			b = protowire.AppendTag(b, 1, protowire.VarintType) // dims
			b = protowire.AppendVarint(b, uint64(d))
		}
		b = protowire.AppendTag(b, 2, protowire.VarintType) // data_type
		b = protowire.AppendVarint(b, 1)                    // FLOAT
		b = appendString(b, 8, name)                        // name
		if !external {
			return appendBytes(b, 9, raw) // raw_data
		}
		for _, kv := range [][2]string{{"location", "weights.data"}, {"offset", strconv.Itoa(len(data))}, {"length", strconv.Itoa(len(raw))}} {
			b = appendBytes(b, 13, appendString(appendString(nil, 1, kv[0]), 2, kv[1])) // external_data
		}
		data = append(data, raw...)
		b = protowire.AppendTag(b, 14, protowire.VarintType) // data_location
		return protowire.AppendVarint(b, 1)                  // EXTERNAL
	}
	valueInfo := func(name string, dims ...int64) []byte {
		var shape []byte
		for _, d := range dims {
			shape = appendBytes(shape, 1, protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(d)))
		}
		tt := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1) // elem_type FLOAT
		tt = appendBytes(tt, 2, shape)
		return appendBytes(appendString(nil, 1, name), 2, appendBytes(nil, 1, tt))
	}
	node := func(op string, out string, in ...string) []byte {
		var b []byte
		for _, i := range in {
			b = appendString(b, 1, i)
		}
		return appendString(appendString(b, 2, out), 4, op)
	}
	var g []byte
	g = appendBytes(g, 1, node("MatMul", "XW", "X", "W"))
	g = appendBytes(g, 1, node("Add", "Y", "XW", "B"))
	g = appendString(g, 2, "linear")
	g = appendBytes(g, 5, tensor("W", []int64{4, 3}, linearW))
	g = appendBytes(g, 5, tensor("B", []int64{3}, linearB))
	g = appendBytes(g, 11, valueInfo("X", 1, 4))
	g = appendBytes(g, 12, valueInfo("Y", 1, 3))
	var m []byte
	m = protowire.AppendTag(m, 1, protowire.VarintType) // ir_version
	m = protowire.AppendVarint(m, 8)
	m = appendString(m, 2, "cortex test") // producer_name
	m = appendBytes(m, 7, g)              // graph
	opset := protowire.AppendVarint(protowire.AppendTag(appendString(nil, 1, ""), 2, protowire.VarintType), 13)
	m = appendBytes(m, 8, opset) // opset_import
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(p, m, 0o644); err != nil {
		t.Fatal(err)
	}
	if external {
		if err := os.WriteFile(filepath.Join(dir, "weights.data"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	return appendBytes(b, num, []byte(v))
}

var linearX = []float32{1, -2, 0.5, 4}

// linearWant is X·W + B computed here, for a check that does not depend
// on ONNX Runtime agreeing with itself.
func linearWant() []float32 {
	out := make([]float32, 3)
	for j := range 3 {
		s := float64(linearB[j])
		for i := range 4 {
			s += float64(linearX[i]) * float64(linearW[i*3+j])
		}
		out[j] = float32(s)
	}
	return out
}

func TestExternalDataSession(t *testing.T) {
	single := writeLinearModel(t, filepath.Join(t.TempDir(), "single"), false)
	// The models are in temporary directories, not the test's working
	// directory: the data file is found beside the model.
	external := writeLinearModel(t, filepath.Join(t.TempDir(), "external"), true)
	if st, err := os.Stat(external); err != nil || st.Size() > 400 {
		t.Fatalf("the external-data model is %v bytes (%v); its weights should be in weights.data", st.Size(), err)
	}
	run := func(p string) []float32 {
		s, err := onnx.Open(context.Background(), p, onnx.SessionOptions{IntraOpThreads: 1})
		if err != nil {
			t.Fatalf("Open(%s): %v", p, err)
		}
		defer s.Close()
		out, err := s.Run(context.Background(), onnx.Tensor{Shape: []int64{1, 4}, Data: linearX})
		if err != nil {
			t.Fatalf("Run(%s): %v", p, err)
		}
		if len(out) != 1 || len(out[0].Data) != 3 {
			t.Fatalf("Run(%s): %+v; want one [1,3] output", p, out)
		}
		return out[0].Data
	}
	got, want := run(external), run(single)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("external-data model: Y = %v; the single-file model gives %v", got, want)
			break
		}
	}
	for i, w := range linearWant() {
		if math.Abs(float64(got[i]-w)) > 1e-5 {
			t.Errorf("Y = %v; X·W+B is %v", got, linearWant())
			break
		}
	}
	// Without its data file the model does not load, and the error says
	// which model.
	if err := os.Remove(filepath.Join(filepath.Dir(external), "weights.data")); err != nil {
		t.Fatal(err)
	}
	s, err := onnx.Open(context.Background(), external, onnx.SessionOptions{})
	if err == nil {
		s.Close()
		t.Fatal("Open of an external-data model without its data file succeeded")
	}
	if !strings.Contains(err.Error(), external) {
		t.Errorf("Open without the data file: %v; want the model's path in the error", err)
	}
}

// A multi-model repository serves an external-data model from a version
// directory, its data file beside it.
func TestExternalDataRepository(t *testing.T) {
	dir := t.TempDir()
	writeLinearModel(t, filepath.Join(dir, "models", "linear", "1"), true)
	writeLinearModel(t, filepath.Join(dir, "models", "inline"), false)
	p := onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(-1))
	if err := p.Init(context.Background(), functions.Config{Name: "multi", Dir: dir}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	defer p.Close()
	row := `{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,-2,0.5,4]}]}`
	outputs := map[string][]float32{}
	for _, model := range []string{"linear", "inline"} {
		resp, err := p.Predict(context.Background(), &functions.Request{Model: model, Protocol: functions.ProtocolOIP, Body: []byte(row)})
		if err != nil {
			t.Fatalf("Predict(%s): %v", model, err)
		}
		var body struct {
			Outputs []struct {
				Data []float32 `json:"data"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(resp.Body, &body); err != nil || len(body.Outputs) != 1 {
			t.Fatalf("Predict(%s): %s (%v)", model, resp.Body, err)
		}
		outputs[model] = body.Outputs[0].Data
	}
	if got, want := outputs["linear"], outputs["inline"]; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("external-data model in the repository: %v; the single-file model gives %v", got, want)
	}
}

// A new data file under an unchanged graph is a new model: the repository
// takes it up as it takes up a changed .onnx file.
func TestExternalDataHotReload(t *testing.T) {
	dir := t.TempDir()
	mdir := filepath.Join(dir, "models", "linear")
	writeLinearModel(t, mdir, true)
	p := onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(20*time.Millisecond))
	if err := p.Init(context.Background(), functions.Config{Name: "multi", Dir: dir}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	defer p.Close()
	predict := func() []float32 {
		resp, err := p.Predict(context.Background(), &functions.Request{Model: "linear", Protocol: functions.ProtocolOIP,
			Body: []byte(`{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,-2,0.5,4]}]}`)})
		if err != nil {
			t.Fatalf("Predict: %v", err)
		}
		var body struct {
			Outputs []struct {
				Data []float32 `json:"data"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(resp.Body, &body); err != nil || len(body.Outputs) != 1 {
			t.Fatalf("Predict: %s (%v)", resp.Body, err)
		}
		return body.Outputs[0].Data
	}
	if got, want := predict(), linearWant(); !closeTo(got, want) {
		t.Fatalf("before: Y = %v, want %v", got, want)
	}
	// W doubled, B zero: Y = 2·(X·W).
	data := make([]byte, 4*(len(linearW)+len(linearB)))
	for i, v := range linearW {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(2*v))
	}
	tmp := filepath.Join(mdir, ".weights.data.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(mdir, "weights.data")); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 3)
	for j := range 3 {
		want[j] = 2 * (linearWant()[j] - linearB[j])
	}
	repoWait(t, "the new weights", func() bool { return closeTo(predict(), want) })
}

func closeTo(got, want []float32) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4 {
			return false
		}
	}
	return true
}
