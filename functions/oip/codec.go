package oip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/cortexfn/cortex/functions"
)

// DefaultMaxElements bounds the total number of tensor elements in one
// request when DecodeRequest is given no limit: 4 Mi elements, 32 MiB as
// FP64, well above what a 6 MiB body can carry.
const DefaultMaxElements = 1 << 22

type wireRequest struct {
	ID         string          `json:"id"`
	Parameters Parameters      `json:"parameters"`
	Inputs     []wireInput     `json:"inputs"`
	Outputs    []RequestOutput `json:"outputs"`
}

type wireInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   Datatype        `json:"datatype"`
	Parameters Parameters      `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

// DecodeRequest decodes and checks an inference request. limit, when given
// and positive, bounds the total number of elements over all inputs
// (default DefaultMaxElements). Every error is a 400 *functions.Error whose
// message names the input at fault and says what was expected.
func DecodeRequest(body []byte, limit ...int) (*InferenceRequest, error) {
	max := DefaultMaxElements
	if len(limit) > 0 && limit[0] > 0 {
		max = limit[0]
	}
	if w, ok := scanRequest(body); ok {
		if req, err := checkRequest(&w, max); err == nil {
			return req, nil
		}
		// Let encoding/json read it again, so that every error is worded
		// one way whichever path read the request.
	}
	var w wireRequest
	if err := functions.DecodeJSON(body, &w); err != nil {
		return nil, err
	}
	return checkRequest(&w, max)
}

// checkRequest checks a decoded envelope and decodes its tensors.
func checkRequest(w *wireRequest, max int) (*InferenceRequest, error) {
	if len(w.Inputs) == 0 {
		return nil, badRequest(`inference request has no inputs: send {"inputs": [{"name", "shape", "datatype", "data"}]}`)
	}
	req := &InferenceRequest{
		ID:         w.ID,
		Parameters: w.Parameters,
		Inputs:     make([]RequestInput, len(w.Inputs)),
		Outputs:    w.Outputs,
	}
	// A few inputs are checked for repeats by a scan, many with a map.
	var seen map[string]bool
	if len(w.Inputs) > 8 {
		seen = make(map[string]bool, len(w.Inputs))
	}
	remaining := max
	for i := range w.Inputs {
		in := &w.Inputs[i]
		if in.Name == "" {
			return nil, badRequest("input %d has no name", i)
		}
		repeated := seen[in.Name]
		if seen != nil {
			seen[in.Name] = true
		} else {
			repeated = slices.ContainsFunc(req.Inputs[:i], func(x RequestInput) bool { return x.Name == in.Name })
		}
		if repeated {
			return nil, badRequest("input %q appears more than once", in.Name)
		}
		d, err := decodeInput(in, remaining, max)
		if err != nil {
			return nil, err
		}
		remaining -= d.Len()
		req.Inputs[i] = RequestInput{Name: in.Name, Shape: in.Shape, Datatype: in.Datatype, Parameters: in.Parameters, Data: d}
	}
	for i, o := range w.Outputs {
		if o.Name == "" {
			return nil, badRequest("requested output %d has no name", i)
		}
	}
	return req, nil
}

func decodeInput(in *wireInput, remaining, max int) (Data, error) {
	if in.Datatype == "" {
		return Data{}, badRequest("input %q has no datatype: use one of %s", in.Name, datatypeList)
	}
	if !in.Datatype.Valid() {
		return Data{}, badRequest("input %q: datatype %q is not one of %s", in.Name, in.Datatype, datatypeList)
	}
	if in.Shape == nil {
		return Data{}, badRequest("input %q has no shape: send its dimensions, e.g. \"shape\": [1, 4]", in.Name)
	}
	for _, d := range in.Shape {
		if d < 0 {
			return Data{}, badRequest("input %q: shape %v has a negative dimension; send the actual size of each dimension", in.Name, in.Shape)
		}
	}
	want, ok := elementCount(in.Shape)
	if !ok || want > int64(max) {
		return Data{}, badRequest("input %q: shape %v asks for more than %d elements, the most a request may carry", in.Name, in.Shape, max)
	}
	if len(in.Data) == 0 || string(in.Data) == "null" {
		return Data{}, badRequest("input %q has no data: send its %d elements in \"data\"", in.Name, want)
	}
	d, _, err := decodeData(in.Data, in.Datatype, int(want), remaining)
	if err != nil {
		if errors.Is(err, errTooMany) {
			if remaining < max {
				err = fmt.Errorf("brings the request past %d elements, the most it may carry", max)
			} else {
				err = fmt.Errorf("has more than %d elements, the most a request may carry", max)
			}
		}
		return Data{}, badRequest("input %q: %v", in.Name, err)
	}
	if got := d.Len(); int64(got) != want {
		return Data{}, badRequest("input %q: shape %v needs %d elements, got %d", in.Name, in.Shape, want, got)
	}
	return d, nil
}

// UnmarshalJSON decodes and checks a request as DecodeRequest does, with the
// default element limit.
func (r *InferenceRequest) UnmarshalJSON(b []byte) error {
	req, err := DecodeRequest(b)
	if err != nil {
		return err
	}
	*r = *req
	return nil
}

// Input returns the input called name, or nil.
func (r *InferenceRequest) Input(name string) *RequestInput {
	for i := range r.Inputs {
		if r.Inputs[i].Name == name {
			return &r.Inputs[i]
		}
	}
	return nil
}

// Wants reports whether the request asks for the output called name: true
// when it names no outputs at all.
func (r *InferenceRequest) Wants(name string) bool {
	if len(r.Outputs) == 0 {
		return true
	}
	for _, o := range r.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

type wireResponse struct {
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version"`
	ID           string       `json:"id"`
	Parameters   Parameters   `json:"parameters"`
	Outputs      []wireOutput `json:"outputs"`
}

type wireOutput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   Datatype        `json:"datatype"`
	Parameters Parameters      `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

// DecodeResponse decodes an inference response, as a client reads one. Its
// tensors are checked the way DecodeRequest checks inputs (null elements,
// which stand for NaN or infinities, are refused).
func DecodeResponse(body []byte) (*InferenceResponse, error) {
	var w wireResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("oip: decoding inference response: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("oip: decoding inference response: unexpected data after the document")
	}
	resp := &InferenceResponse{ModelName: w.ModelName, ModelVersion: w.ModelVersion, ID: w.ID, Parameters: w.Parameters,
		Outputs: make([]ResponseOutput, len(w.Outputs))}
	for i, o := range w.Outputs {
		in := wireInput{Name: o.Name, Shape: o.Shape, Datatype: o.Datatype, Data: o.Data}
		d, err := decodeInput(&in, DefaultMaxElements, DefaultMaxElements)
		if err != nil {
			var fe *functions.Error
			if errors.As(err, &fe) {
				err = errors.New(fe.Message)
			}
			return nil, fmt.Errorf("oip: decoding inference response: output %w", err)
		}
		resp.Outputs[i] = ResponseOutput{Name: o.Name, Shape: o.Shape, Datatype: o.Datatype, Parameters: o.Parameters, Data: d}
	}
	return resp, nil
}

// UnmarshalJSON decodes a response as DecodeResponse does.
func (r *InferenceResponse) UnmarshalJSON(b []byte) error {
	resp, err := DecodeResponse(b)
	if err != nil {
		return err
	}
	*r = *resp
	return nil
}

// Output returns the output called name, or nil.
func (r *InferenceResponse) Output(name string) *ResponseOutput {
	for i := range r.Outputs {
		if r.Outputs[i].Name == name {
			return &r.Outputs[i]
		}
	}
	return nil
}

// MarshalJSON encodes the response; see AppendJSON.
func (r *InferenceResponse) MarshalJSON() ([]byte, error) {
	n := 64
	for _, o := range r.Outputs {
		n += 64 + 12*o.Data.Len()
	}
	return r.AppendJSON(make([]byte, 0, n))
}

// AppendJSON appends the response as compact JSON to dst. It writes the
// tensors without reflection, so a server can reuse dst between requests.
func (r *InferenceResponse) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"model_name":`...)
	dst = appendString(dst, r.ModelName)
	if r.ModelVersion != "" {
		dst = append(dst, `,"model_version":`...)
		dst = appendString(dst, r.ModelVersion)
	}
	if r.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, r.ID)
	}
	var err error
	if dst, err = appendParameters(dst, r.Parameters); err != nil {
		return dst, err
	}
	dst = append(dst, `,"outputs":[`...)
	for i := range r.Outputs {
		o := &r.Outputs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, o.Name)
		dst = append(dst, `,"datatype":`...)
		dst = appendString(dst, string(o.Datatype))
		dst = append(dst, `,"shape":[`...)
		for j, d := range o.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, d, 10)
		}
		dst = append(dst, ']')
		if dst, err = appendParameters(dst, o.Parameters); err != nil {
			return dst, err
		}
		dst = append(dst, `,"data":`...)
		if dst, err = appendData(dst, o.Data, nil); err != nil {
			return dst, err
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...), nil
}

func appendParameters(dst []byte, p Parameters) ([]byte, error) {
	if len(p) == 0 {
		return dst, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return dst, fmt.Errorf("oip: encoding parameters: %w", err)
	}
	dst = append(dst, `,"parameters":`...)
	return append(dst, b...), nil
}

// Typed accessors. Each returns the input's elements without copying when
// they are held as the Go type asked for, and otherwise a 400 that says which
// datatype the input has and which was expected.

// Float32s returns the elements of an FP32, FP16 or BF16 input.
func (in *RequestInput) Float32s() ([]float32, error) { return values[float32](in, "FP32") }

// Float64s returns the elements of an FP64 input.
func (in *RequestInput) Float64s() ([]float64, error) { return values[float64](in, "FP64") }

// Int8s returns the elements of an INT8 input.
func (in *RequestInput) Int8s() ([]int8, error) { return values[int8](in, "INT8") }

// Int16s returns the elements of an INT16 input.
func (in *RequestInput) Int16s() ([]int16, error) { return values[int16](in, "INT16") }

// Int32s returns the elements of an INT32 input.
func (in *RequestInput) Int32s() ([]int32, error) { return values[int32](in, "INT32") }

// Int64s returns the elements of an INT64 input.
func (in *RequestInput) Int64s() ([]int64, error) { return values[int64](in, "INT64") }

// Uint8s returns the elements of a UINT8 input.
func (in *RequestInput) Uint8s() ([]uint8, error) { return values[uint8](in, "UINT8") }

// Uint16s returns the elements of a UINT16 input.
func (in *RequestInput) Uint16s() ([]uint16, error) { return values[uint16](in, "UINT16") }

// Uint32s returns the elements of a UINT32 input.
func (in *RequestInput) Uint32s() ([]uint32, error) { return values[uint32](in, "UINT32") }

// Uint64s returns the elements of a UINT64 input.
func (in *RequestInput) Uint64s() ([]uint64, error) { return values[uint64](in, "UINT64") }

// Bools returns the elements of a BOOL input.
func (in *RequestInput) Bools() ([]bool, error) { return values[bool](in, "BOOL") }

// Strings returns the elements of a BYTES input.
func (in *RequestInput) Strings() ([]string, error) { return values[string](in, "BYTES") }

func values[T Element](in *RequestInput, want string) ([]T, error) {
	if s, ok := Values[T](in.Data); ok {
		return s, nil
	}
	return nil, functions.Errorf(http.StatusBadRequest, "input %q is %s, want %s", in.Name, in.Datatype, want)
}
