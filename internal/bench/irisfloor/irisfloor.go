// Package irisfloor is the floor the bench programs measure the iris
// function against: the bare net/http handler a user would write without
// Cortex, decoding one OIP request with encoding/json and calling ONNX
// Runtime (onnxruntime_go) directly, with no limits, metrics or request
// ids. internal/bench/serving and internal/bench/floor serve it.
package irisfloor

import (
	"encoding/json"
	"net/http"

	ort "github.com/yalue/onnxruntime_go"
)

// NewSession opens the iris model's session; ONNX Runtime's environment
// must be initialised.
func NewSession(model string) (*ort.DynamicAdvancedSession, error) {
	return ort.NewDynamicAdvancedSession(model, []string{"input"}, []string{"label", "probabilities"}, nil)
}

type tensor struct {
	Name     string    `json:"name"`
	Shape    []int64   `json:"shape"`
	Datatype string    `json:"datatype"`
	Data     []float32 `json:"data"`
}

// Handler answers an OIP inference request for iris with session.
func Handler(session *ort.DynamicAdvancedSession) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Inputs []tensor `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) != 1 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		in, err := ort.NewTensor(ort.NewShape(req.Inputs[0].Shape...), req.Inputs[0].Data)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer in.Destroy()
		outs := []ort.Value{nil, nil}
		if err := session.Run([]ort.Value{in}, outs); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer outs[0].Destroy()
		defer outs[1].Destroy()
		label := outs[0].(*ort.Tensor[int64])
		probs := outs[1].(*ort.Tensor[float32])
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"model_name": "iris",
			"outputs": []any{
				map[string]any{"name": "label", "shape": label.GetShape(), "datatype": "INT64", "data": label.GetData()},
				map[string]any{"name": "probabilities", "shape": probs.GetShape(), "datatype": "FP32", "data": probs.GetData()},
			},
		})
	})
}
