//go:build wasip1

// Command stages is the iris-wasm function's pre and post stage, built for
// WebAssembly (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared; cortex does it).
//
// Preprocess turns flowers, as a person would write them, into the Open
// Inference Protocol request the ONNX model takes; Postprocess turns the
// model's label and probabilities into class names. Nothing here can touch
// the filesystem, the network or the clock: the sandbox grants none.
package main

import (
	"encoding/json"
	"fmt"

	"github.com/cortexfn/cortex/functions/wasmguest"
)

// classes are the iris species in the order the model was trained on.
var classes = []string{"setosa", "versicolor", "virginica"}

// flower is one set of measurements in centimetres. Pointers tell a
// missing field from a zero.
type flower struct {
	SepalLength *float32 `json:"sepal_length"`
	SepalWidth  *float32 `json:"sepal_width"`
	PetalLength *float32 `json:"petal_length"`
	PetalWidth  *float32 `json:"petal_width"`
}

type tensor struct {
	Name     string    `json:"name"`
	Shape    []int64   `json:"shape"`
	Datatype string    `json:"datatype"`
	Data     []float64 `json:"data"`
}

type prediction struct {
	Class       string  `json:"class"`
	Probability float64 `json:"probability"`
}

func init() {
	wasmguest.Preprocess(preprocess)
	wasmguest.Postprocess(postprocess)
}

func preprocess(in []byte) ([]byte, error) {
	var flowers []flower
	if err := json.Unmarshal(in, &flowers); err != nil {
		var one flower
		if err := json.Unmarshal(in, &one); err != nil {
			return nil, wasmguest.Errorf(400, `send a flower {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2} or a list of them: %v`, err)
		}
		flowers = []flower{one}
	}
	if len(flowers) == 0 {
		return nil, wasmguest.Errorf(422, "the list of flowers is empty")
	}
	data := make([]float32, 0, 4*len(flowers))
	for i, f := range flowers {
		for _, m := range []struct {
			name string
			v    *float32
		}{{"sepal_length", f.SepalLength}, {"sepal_width", f.SepalWidth}, {"petal_length", f.PetalLength}, {"petal_width", f.PetalWidth}} {
			if m.v == nil {
				return nil, wasmguest.Errorf(422, "flower %d: %s is required (centimetres)", i, m.name)
			}
			if *m.v < 0 || *m.v > 100 {
				return nil, wasmguest.Errorf(422, "flower %d: %s = %v is not a plausible length in centimetres", i, m.name, *m.v)
			}
			data = append(data, *m.v)
		}
	}
	return json.Marshal(map[string]any{"inputs": []any{map[string]any{
		"name": "input", "shape": []int{len(flowers), 4}, "datatype": "FP32", "data": data,
	}}})
}

func postprocess(in []byte) ([]byte, error) {
	var resp struct {
		Outputs []tensor `json:"outputs"`
	}
	if err := json.Unmarshal(in, &resp); err != nil {
		return nil, fmt.Errorf("the model's answer is not OIP JSON: %w", err)
	}
	var labels, probs []float64
	for _, o := range resp.Outputs {
		switch o.Name {
		case "label":
			labels = o.Data
		case "probabilities":
			probs = o.Data
		}
	}
	if len(probs) != 3*len(labels) {
		return nil, fmt.Errorf("the model answered %d labels and %d probabilities", len(labels), len(probs))
	}
	out := make([]prediction, len(labels))
	for i, l := range labels {
		c := int(l)
		if c < 0 || c >= len(classes) {
			return nil, fmt.Errorf("the model answered label %d, outside its %d classes", c, len(classes))
		}
		out[i] = prediction{Class: classes[c], Probability: probs[3*i+c]}
	}
	return json.Marshal(out)
}

func main() {}
