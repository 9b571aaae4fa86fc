package onnx

import (
	"context"
	"fmt"
	"log/slog"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/cortexfn/cortex/functions/oip"
)

// runModel runs the model on inputs, rows the size of their first
// dimension, and returns its outputs, which the caller destroys.
//
// Where every output's shape is known before the run (its dimensions
// fixed, but for a dynamic first one, taken to be rows: see shapedOutputs),
// the outputs are Go-backed tensors allocated here: ONNX Runtime writes
// straight into them and the answer reads them in place. Otherwise Run
// allocates them in C memory and onnxruntime_go copies each into Go
// memory, with a cgo call each for its type, shape, element type, data and
// release: 15 % of an iris prediction's CPU (BENCHMARKS.md, "Performance
// at the floor"). A model whose dynamic first output dimension is not the
// rows (a detector's boxes) makes ONNX Runtime refuse the run; runModel
// then runs it again the usual way and does not guess for this predictor
// again.
func (p *Predictor) runModel(ctx context.Context, inputs []ort.Value, rows int64) ([]ort.Value, error) {
	if !p.guess.Load() || rows <= 0 {
		return p.runAllocated(ctx, inputs)
	}
	outputs, err := p.allocOutputs(rows)
	if err != nil {
		return nil, err
	}
	err = p.run(ctx, inputs, outputs)
	if err == nil {
		return outputs, nil
	}
	destroyAll(outputs)
	if ctx.Err() != nil {
		return nil, err
	}
	// Refused: not the shapes guessed, or a failure of the model's own,
	// which the run below meets again.
	if outputs, err = p.runAllocated(ctx, inputs); err != nil {
		return nil, err
	}
	p.guess.Store(false)
	slog.Info("onnx: the outputs' shapes vary; ONNX Runtime allocates them from now on", "model", p.name)
	return outputs, nil
}

// runAllocated runs the model with outputs ONNX Runtime allocates.
func (p *Predictor) runAllocated(ctx context.Context, inputs []ort.Value) ([]ort.Value, error) {
	outputs := make([]ort.Value, len(p.outputs)) // nil: allocated by Run
	if err := p.run(ctx, inputs, outputs); err != nil {
		destroyAll(outputs)
		return nil, err
	}
	return outputs, nil
}

// shapedOutputs reports whether every output can be allocated before the
// run: a tensor of a type with a Go-backed tensor (emptyTensors), every
// dimension fixed but the first, which may be dynamic (the rows).
func shapedOutputs(outputs []tensorInfo) bool {
	for _, o := range outputs {
		if emptyTensors[o.Datatype] == nil {
			return false
		}
		for d, n := range o.Shape {
			if n <= 0 && d > 0 {
				return false
			}
		}
	}
	return true
}

// allocOutputs returns an empty tensor for each output, shaped as the
// model declares it with a dynamic first dimension set to rows; only for
// outputs shapedOutputs accepts.
func (p *Predictor) allocOutputs(rows int64) ([]ort.Value, error) {
	outputs := make([]ort.Value, len(p.outputs))
	for i, o := range p.outputs {
		shape := ort.Shape(append([]int64(nil), o.Shape...))
		if len(shape) > 0 && shape[0] <= 0 {
			shape[0] = rows
		}
		var err error
		if outputs[i], err = emptyTensors[o.Datatype](shape); err != nil {
			destroyAll(outputs)
			return nil, fmt.Errorf("onnx: output %q: %w", o.Name, err)
		}
	}
	return outputs, nil
}

// emptyTensors makes a Go-backed tensor of each datatype toOutput reads.
var emptyTensors = map[oip.Datatype]func(ort.Shape) (ort.Value, error){
	oip.FP32: emptyTensor[float32], oip.FP64: emptyTensor[float64],
	oip.INT8: emptyTensor[int8], oip.INT16: emptyTensor[int16], oip.INT32: emptyTensor[int32], oip.INT64: emptyTensor[int64],
	oip.UINT8: emptyTensor[uint8], oip.UINT16: emptyTensor[uint16], oip.UINT32: emptyTensor[uint32], oip.UINT64: emptyTensor[uint64],
	oip.BOOL: emptyTensor[bool],
}

func emptyTensor[T ort.TensorData](shape ort.Shape) (ort.Value, error) {
	t, err := ort.NewEmptyTensor[T](shape)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return t, nil
}
