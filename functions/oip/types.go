package oip

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/cortexfn/cortex/functions"
)

// Datatype is the name of a tensor element type in the Open Inference
// Protocol.
type Datatype string

// The datatypes of the Open Inference Protocol.
const (
	BOOL   Datatype = "BOOL"
	UINT8  Datatype = "UINT8"
	UINT16 Datatype = "UINT16"
	UINT32 Datatype = "UINT32"
	UINT64 Datatype = "UINT64"
	INT8   Datatype = "INT8"
	INT16  Datatype = "INT16"
	INT32  Datatype = "INT32"
	INT64  Datatype = "INT64"
	FP16   Datatype = "FP16"
	FP32   Datatype = "FP32"
	FP64   Datatype = "FP64"
	BF16   Datatype = "BF16"
	BYTES  Datatype = "BYTES"
)

var datatypes = []Datatype{BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, BYTES}

var datatypeList = func() string {
	s := make([]string, len(datatypes))
	for i, d := range datatypes {
		s[i] = string(d)
	}
	return strings.Join(s, ", ")
}()

// Valid reports whether d is one of the protocol's datatypes. Names are case
// sensitive, as in the protocol.
func (d Datatype) Valid() bool {
	switch d {
	case BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, BYTES:
		return true
	}
	return false
}

// Size is the size of one element in bytes, as the binary extension lays it
// out; 0 for BYTES, whose elements vary in length.
func (d Datatype) Size() int {
	switch d {
	case BOOL, UINT8, INT8:
		return 1
	case UINT16, INT16, FP16, BF16:
		return 2
	case UINT32, INT32, FP32:
		return 4
	case UINT64, INT64, FP64:
		return 8
	}
	return 0
}

// Element is a Go type that holds the elements of some datatype.
type Element interface {
	bool | uint8 | uint16 | uint32 | uint64 | int8 | int16 | int32 | int64 | float32 | float64 | string
}

// DatatypeOf returns the datatype whose elements decode to T: FP32 for
// float32 (FP16 and BF16 also decode to float32), BYTES for string.
func DatatypeOf[T Element]() Datatype {
	var z T
	switch any(z).(type) {
	case bool:
		return BOOL
	case uint8:
		return UINT8
	case uint16:
		return UINT16
	case uint32:
		return UINT32
	case uint64:
		return UINT64
	case int8:
		return INT8
	case int16:
		return INT16
	case int32:
		return INT32
	case int64:
		return INT64
	case float32:
		return FP32
	case float64:
		return FP64
	default:
		return BYTES
	}
}

// Parameters holds the free-form parameters of a request, response or
// tensor.
type Parameters map[string]any

// InferenceRequest is the body of POST /v2/models/{name}/infer.
type InferenceRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters Parameters      `json:"parameters,omitempty"`
	Inputs     []RequestInput  `json:"inputs"`
	Outputs    []RequestOutput `json:"outputs,omitempty"`
}

// RequestInput is one input tensor of a request.
type RequestInput struct {
	Name       string     `json:"name"`
	Shape      []int64    `json:"shape"`
	Datatype   Datatype   `json:"datatype"`
	Parameters Parameters `json:"parameters,omitempty"`
	// Data holds the elements, flattened in row-major order.
	Data Data `json:"data"`
}

// RequestOutput names an output the caller wants; a request that names none
// wants them all.
type RequestOutput struct {
	Name       string     `json:"name"`
	Parameters Parameters `json:"parameters,omitempty"`
}

// InferenceResponse is the body of a successful inference.
type InferenceResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version,omitempty"`
	ID           string           `json:"id,omitempty"`
	Parameters   Parameters       `json:"parameters,omitempty"`
	Outputs      []ResponseOutput `json:"outputs"`
}

// ResponseOutput is one output tensor of a response.
type ResponseOutput struct {
	Name       string     `json:"name"`
	Shape      []int64    `json:"shape"`
	Datatype   Datatype   `json:"datatype"`
	Parameters Parameters `json:"parameters,omitempty"`
	// Data holds the elements, flattened in row-major order.
	Data Data `json:"data"`
}

// NewOutput returns an output tensor holding data with the datatype that T
// stands for (see DatatypeOf). For FP16 or BF16, set Datatype afterwards.
func NewOutput[T Element](name string, shape []int64, data []T) ResponseOutput {
	return ResponseOutput{Name: name, Shape: shape, Datatype: DatatypeOf[T](), Data: NewData(data)}
}

// ModelMetadata is the body of GET /v2/models/{name}.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// TensorMetadata describes an input or output of a model. A dimension of -1
// is dynamic: any size is accepted.
type TensorMetadata struct {
	Name     string   `json:"name"`
	Datatype Datatype `json:"datatype"`
	Shape    []int64  `json:"shape"`
}

// Accepts reports whether shape fits the metadata's shape: the same rank,
// and every fixed dimension equal. A nil metadata shape accepts any shape.
func (m TensorMetadata) Accepts(shape []int64) bool {
	if m.Shape == nil {
		return true
	}
	if len(shape) != len(m.Shape) {
		return false
	}
	for i, d := range m.Shape {
		if d >= 0 && shape[i] != d {
			return false
		}
	}
	return true
}

func (m TensorMetadata) String() string {
	return fmt.Sprintf("%q %s %v", m.Name, m.Datatype, m.Shape)
}

func badRequest(format string, args ...any) error {
	return functions.Errorf(http.StatusBadRequest, format, args...)
}
