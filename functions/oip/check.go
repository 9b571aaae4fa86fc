package oip

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cortexfn/cortex/functions"
)

// CheckRequest checks a decoded inference request against the metadata of
// the model it is for, and returns nil when it fits, else one 422
// *functions.Error that lists every misfit (see Mismatches) in its
// Fields and its message:
//
//	inference request does not fit model "iris": $.inputs[0].shape: [1,3] does not match the model's [-1,4] (-1 takes any size); $.inputs[1].name: ...
//
// DecodeRequest's own 400s come first: they are about the request alone
// (not JSON, no datatype, data that does not fill its shape), while these
// are about the request and this model.
//
// It allocates nothing when the request fits, so a server can call it on
// every request.
func CheckRequest(req *InferenceRequest, md ModelMetadata) error {
	m := Mismatches(req, md)
	if m == nil {
		return nil
	}
	return functions.Unprocessable(fmt.Sprintf("inference request does not fit model %q", md.Name), m)
}

// Mismatches lists every way a decoded request does not fit the model's
// metadata, in the order of the request: an input the model does not
// have, a datatype or shape other than the model's (a -1 dimension takes
// any size), an input of the model the request leaves out, an output
// asked for that the model does not have. Each is a field error with the
// JSON path of what is at fault. Inputs the metadata describes with no
// datatype or shape are not checked for them. It returns nil when the
// request fits.
func Mismatches(req *InferenceRequest, md ModelMetadata) []functions.FieldError {
	var fields []functions.FieldError
	add := func(path, format string, args ...any) {
		fields = append(fields, functions.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	for i := range req.Inputs {
		in := &req.Inputs[i]
		t := md.input(in.Name)
		if t == nil {
			add(fmt.Sprintf("$.inputs[%d].name", i), "%q is not an input of the model; its inputs are %s", in.Name, tensors(md.Inputs))
			continue
		}
		if t.Datatype != "" && in.Datatype != t.Datatype {
			add(fmt.Sprintf("$.inputs[%d].datatype", i), "%s does not match the model's %s", in.Datatype, t.Datatype)
		}
		if !t.Accepts(in.Shape) {
			add(fmt.Sprintf("$.inputs[%d].shape", i), "%s does not match the model's %s (-1 takes any size)", dims(in.Shape), dims(t.Shape))
		}
	}
	for i := range md.Inputs {
		t := &md.Inputs[i]
		if req.Input(t.Name) == nil {
			add("$.inputs", "missing input %q (%s %s)", t.Name, t.Datatype, dims(t.Shape))
		}
	}
	for i, o := range req.Outputs {
		if md.output(o.Name) == nil {
			add(fmt.Sprintf("$.outputs[%d].name", i), "%q is not an output of the model; its outputs are %s", o.Name, names(md.Outputs))
		}
	}
	return fields
}

func (md *ModelMetadata) input(name string) *TensorMetadata {
	for i := range md.Inputs {
		if md.Inputs[i].Name == name {
			return &md.Inputs[i]
		}
	}
	return nil
}

func (md *ModelMetadata) output(name string) *TensorMetadata {
	for i := range md.Outputs {
		if md.Outputs[i].Name == name {
			return &md.Outputs[i]
		}
	}
	return nil
}

// dims words a shape as JSON: [1,4], [-1,4].
func dims(shape []int64) string {
	b := make([]byte, 0, 2+4*len(shape))
	b = append(b, '[')
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return string(append(b, ']'))
}

// tensors words a list of tensors: "input" FP32 [-1,4], "mask" BOOL [-1].
func tensors(ts []TensorMetadata) string {
	if len(ts) == 0 {
		return "none"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = fmt.Sprintf("%q %s %s", t.Name, t.Datatype, dims(t.Shape))
	}
	return strings.Join(s, ", ")
}

// names quotes the tensors' names: "label", "probabilities".
func names(ts []TensorMetadata) string {
	if len(ts) == 0 {
		return "none"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = strconv.Quote(t.Name)
	}
	return strings.Join(s, ", ")
}
