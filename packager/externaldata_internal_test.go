package packager

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// ONNXModel builds the smallest ONNX model with external data, Y = X·W + B
// (X [1,4], W [4,3], B [3]), its weights in the file named location
// (relative to the model) or inside the model when location is empty.
// It returns the model and the data file's bytes (W at offset 0, B after
// it). runtime/onnx's external_test.go runs the same model; here it is
// exported to the package's black-box tests (the export_test.go pattern).
func ONNXModel(location string) (model, data []byte) {
	w := []float32{0.5, -1, 2, 0.25, 3, -0.75, -2, 1.5, 0.125, 1, 0, -3}
	b := []float32{0.1, -0.2, 0.3}
	str := func(b []byte, num protowire.Number, v string) []byte { return msg(b, num, []byte(v)) }
	tensor := func(name string, dims []int64, vals []float32) []byte {
		raw := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		var t []byte
		for _, d := range dims {
			t = varint(t, 1, uint64(d)) // dims
		}
		t = varint(t, 2, 1) // data_type FLOAT
		t = str(t, 8, name) // name
		if location == "" {
			return msg(t, 9, raw) // raw_data
		}
		for _, kv := range [][2]string{{"location", location}, {"offset", strconv.Itoa(len(data))}, {"length", strconv.Itoa(len(raw))}} {
			t = msg(t, 13, str(str(nil, 1, kv[0]), 2, kv[1])) // external_data
		}
		data = append(data, raw...)
		return varint(t, 14, 1) // data_location EXTERNAL
	}
	valueInfo := func(name string, dims ...int64) []byte {
		var shape []byte
		for _, d := range dims {
			shape = msg(shape, 1, varint(nil, 1, uint64(d)))
		}
		tt := msg(varint(nil, 1, 1), 2, shape)
		return msg(str(nil, 1, name), 2, msg(nil, 1, tt))
	}
	var g []byte
	g = msg(g, 1, str(str(str(str(nil, 1, "X"), 1, "W"), 2, "XW"), 4, "MatMul"))
	g = msg(g, 1, str(str(str(str(nil, 1, "XW"), 1, "B"), 2, "Y"), 4, "Add"))
	g = str(g, 2, "linear")
	g = msg(g, 5, tensor("W", []int64{4, 3}, w))
	g = msg(g, 5, tensor("B", []int64{3}, b))
	g = msg(g, 11, valueInfo("X", 1, 4))
	g = msg(g, 12, valueInfo("Y", 1, 3))
	model = varint(nil, 1, 8) // ir_version
	model = str(model, 2, "cortex test")
	model = msg(model, 7, g)
	model = msg(model, 8, varint(str(nil, 1, ""), 2, 13)) // opset_import
	return model, data
}

func msg(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func varint(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func TestONNXExternalData(t *testing.T) {
	model, data := ONNXModel("weights.data")
	refs, err := onnxExternalData(bytes.NewReader(model), int64(len(model)))
	if err != nil {
		t.Fatal(err)
	}
	want := []externalRef{{Tensor: "W", Location: "weights.data", Offset: 0, Length: 48}, {Tensor: "B", Location: "weights.data", Offset: 48, Length: 12}}
	if !slices.Equal(refs, want) || len(data) != 60 {
		t.Errorf("onnxExternalData = %+v (data %d bytes); want %+v (60 bytes)", refs, len(data), want)
	}
	inline, _ := ONNXModel("")
	if refs, err := onnxExternalData(bytes.NewReader(inline), int64(len(inline))); err != nil || len(refs) != 0 {
		t.Errorf("a model with its weights inside: %+v, %v; want no external data", refs, err)
	}
	// The real iris model: weights inside, walked past.
	iris, err := os.ReadFile(filepath.Join("..", "samples", "iris", "model", "iris.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if refs, err := onnxExternalData(bytes.NewReader(iris), int64(len(iris))); err != nil || len(refs) != 0 {
		t.Errorf("iris.onnx: %+v, %v; want no external data", refs, err)
	}
	for _, bad := range [][]byte{model[:len(model)-5], []byte("not a model"), {}} {
		if _, err := onnxExternalData(bytes.NewReader(bad), int64(len(bad))); err == nil {
			t.Errorf("onnxExternalData(%q...) succeeded; want an error", bad[:min(len(bad), 12)])
		}
	}
}

// FuzzONNXExternalData: the model is outside input; no model may make the
// walker panic or read past the file.
func FuzzONNXExternalData(f *testing.F) {
	model, _ := ONNXModel("weights.data")
	inline, _ := ONNXModel("")
	f.Add(model)
	f.Add(inline)
	f.Fuzz(func(t *testing.T, b []byte) {
		onnxExternalData(bytes.NewReader(b), int64(len(b)))
	})
}
