package onnx

import (
	"context"
	"log/slog"

	ort "github.com/yalue/onnxruntime_go"
)

// runModel runs the model on inputs, rows the size of their first
// dimension, and returns its outputs, which the caller destroys.
//
// Where every output's shape is known before the run (its dimensions
// fixed, but for a dynamic first one, taken to be rows), the outputs are
// Go-backed tensors allocated here: ONNX Runtime writes straight into
// them and the answer reads them in place. Otherwise Run allocates them
// in C memory and onnxruntime_go copies each into Go memory, with a cgo
// call each for its type, shape, element type, data and release: 15 % of
// an iris prediction's CPU (BENCHMARKS.md, "Performance at the floor").
// A model whose dynamic first output dimension is not the rows (a
// detector's boxes) makes ONNX Runtime refuse the run; runModel then runs
// it again the usual way and does not guess for this predictor again.
func (p *Predictor) runModel(ctx context.Context, inputs []ort.Value, rows int64) ([]ort.Value, error) {
	if !p.noGuess.Load() {
		if outputs := p.allocOutputs(rows); outputs != nil {
			err := p.run(ctx, inputs, outputs)
			if err == nil {
				return outputs, nil
			}
			destroyAll(outputs)
			if ctx.Err() != nil {
				return nil, err
			}
			// Refused: not the shapes guessed, or a failure of the
			// model's own, which the run below meets again.
			outputs = make([]ort.Value, len(p.outputs))
			if err := p.run(ctx, inputs, outputs); err != nil {
				destroyAll(outputs)
				return nil, err
			}
			p.noGuess.Store(true)
			slog.Info("onnx: the outputs' shapes vary; ONNX Runtime allocates them from now on", "model", p.name)
			return outputs, nil
		}
	}
	outputs := make([]ort.Value, len(p.outputs)) // nil: allocated by Run
	if err := p.run(ctx, inputs, outputs); err != nil {
		destroyAll(outputs)
		return nil, err
	}
	return outputs, nil
}

// allocOutputs returns an empty tensor for each output, shaped as the
// model declares it with a dynamic first dimension set to rows, or nil
// when some output's shape is not known before the run or its type has
// no Go-backed tensor.
func (p *Predictor) allocOutputs(rows int64) []ort.Value {
	outputs := make([]ort.Value, len(p.outputs))
	for i, o := range p.outputs {
		shape := make(ort.Shape, len(o.Shape))
		for d, n := range o.Shape {
			switch {
			case n > 0:
				shape[d] = n
			case d == 0 && rows > 0:
				shape[d] = rows
			default:
				destroyAll(outputs)
				return nil
			}
		}
		v, err := emptyTensor(o.elemType, shape)
		if err != nil || v == nil {
			destroyAll(outputs)
			return nil
		}
		outputs[i] = v
	}
	return outputs
}

// emptyTensor is a Go-backed tensor of ONNX element type t (TensorProto's
// DataType), or nil for a type toOutput does not read from one.
func emptyTensor(t int, shape ort.Shape) (ort.Value, error) {
	switch t {
	case 1:
		return ort.NewEmptyTensor[float32](shape)
	case 2:
		return ort.NewEmptyTensor[uint8](shape)
	case 3:
		return ort.NewEmptyTensor[int8](shape)
	case 4:
		return ort.NewEmptyTensor[uint16](shape)
	case 5:
		return ort.NewEmptyTensor[int16](shape)
	case 6:
		return ort.NewEmptyTensor[int32](shape)
	case 7:
		return ort.NewEmptyTensor[int64](shape)
	case 9:
		return ort.NewEmptyTensor[bool](shape)
	case 11:
		return ort.NewEmptyTensor[float64](shape)
	case 12:
		return ort.NewEmptyTensor[uint32](shape)
	case 13:
		return ort.NewEmptyTensor[uint64](shape)
	}
	return nil, nil
}
