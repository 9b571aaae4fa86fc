package onnx

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/cortexfn/cortex/functions/oip"
)

// newValue wraps an input's data in an ONNX Runtime tensor without copying
// it (the tensor points at the Go slice, which the request keeps alive).
func newValue(in *oip.RequestInput) (ort.Value, error) {
	shape := ort.Shape(in.Shape)
	switch s := in.Data.Value().(type) {
	case []float32:
		return ort.NewTensor(shape, s)
	case []float64:
		return ort.NewTensor(shape, s)
	case []int8:
		return ort.NewTensor(shape, s)
	case []int16:
		return ort.NewTensor(shape, s)
	case []int32:
		return ort.NewTensor(shape, s)
	case []int64:
		return ort.NewTensor(shape, s)
	case []uint8:
		return ort.NewTensor(shape, s)
	case []uint16:
		return ort.NewTensor(shape, s)
	case []uint32:
		return ort.NewTensor(shape, s)
	case []uint64:
		return ort.NewTensor(shape, s)
	case []bool:
		return ort.NewTensor(shape, s)
	case []string:
		t, err := ort.NewStringTensor(shape)
		if err != nil {
			return nil, err
		}
		if err := t.SetContents(s); err != nil {
			t.Destroy()
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("no ONNX Runtime tensor for %s data", in.Datatype)
}

// toOutput turns an output value into an OIP output. The data is the slice
// the result is in (Go memory: see runModel), so it outlives the value.
func toOutput(name string, v ort.Value) (oip.ResponseOutput, error) {
	shape := []int64(v.GetShape())
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[float64]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[int8]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[int16]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[int32]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[int64]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[uint8]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[uint16]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[uint32]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[uint64]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.Tensor[bool]:
		return oip.NewOutput(name, shape, t.GetData()), nil
	case *ort.StringTensor:
		s, err := t.GetContents()
		if err != nil {
			return oip.ResponseOutput{}, err
		}
		return oip.NewOutput(name, shape, s), nil
	}
	return oip.ResponseOutput{}, fmt.Errorf("unsupported output value %T", v)
}

func destroyAll(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}
