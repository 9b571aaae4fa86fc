package oip

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cortexfn/cortex/functions"
)

// FromV1 turns a KServe V1 request, {"instances": [...]}, into an inference
// request with one input: the model's input (its name and datatype), of
// shape [len(instances), ...] where the rest is the shape of one instance.
// Every instance must have the same shape. Errors are 400 *functions.Error.
func FromV1(body []byte, input TensorMetadata) (*InferenceRequest, error) {
	var w struct {
		Instances json.RawMessage `json:"instances"`
	}
	if err := functions.DecodeJSON(body, &w); err != nil {
		return nil, err
	}
	if len(w.Instances) == 0 || string(w.Instances) == "null" {
		return nil, badRequest(`request has no instances: send {"instances": [[...], ...]}, one row per instance`)
	}
	if w.Instances[0] != '[' {
		return nil, badRequest(`"instances" must be an array, one row per instance`)
	}
	dt := input.Datatype
	if !dt.Valid() {
		return nil, fmt.Errorf("oip: model input %q has datatype %q", input.Name, dt)
	}
	d, shape, err := decodeData(w.Instances, dt, 0, DefaultMaxElements)
	if err != nil {
		if errors.Is(err, errTooMany) {
			err = fmt.Errorf("has more than %d elements, the most a request may carry", DefaultMaxElements)
		}
		return nil, badRequest("instances: %v", err)
	}
	if len(shape) == 0 || shape[0] == 0 {
		return nil, badRequest(`request has no instances: send {"instances": [[...], ...]}, one row per instance`)
	}
	return &InferenceRequest{Inputs: []RequestInput{{Name: input.Name, Shape: shape, Datatype: dt, Data: d}}}, nil
}

// ToV1 turns an inference response into a KServe V1 response,
// {"predictions": [...]}: the first output split along its first dimension,
// one prediction per row (a scalar output gives one prediction).
func ToV1(resp *InferenceResponse) ([]byte, error) {
	if resp == nil || len(resp.Outputs) == 0 {
		return nil, errors.New("oip: the inference response has no outputs to turn into predictions")
	}
	o := &resp.Outputs[0]
	n, ok := elementCount(o.Shape)
	if !ok || n != int64(o.Data.Len()) {
		return nil, fmt.Errorf("oip: output %q has shape %v but %d elements", o.Name, o.Shape, o.Data.Len())
	}
	dst := append(make([]byte, 0, 32+12*o.Data.Len()), `{"predictions":`...)
	var err error
	if len(o.Shape) == 0 {
		dst, err = appendData(dst, o.Data, nil)
	} else {
		dst, err = appendData(dst, o.Data, o.Shape)
	}
	if err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// RequestBodyFromV1 is FromV1 to the body of the equivalent OIP request:
// what a server that speaks OIP inside does with a KServe V1 request.
func RequestBodyFromV1(body []byte, input TensorMetadata) ([]byte, error) {
	req, err := FromV1(body, input)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("oip: encoding the OIP request: %w", err)
	}
	return b, nil
}

// ResponseBodyToV1 is ToV1 from the body of an OIP response: the KServe V1
// answer to send back.
func ResponseBodyToV1(body []byte) ([]byte, error) {
	resp, err := DecodeResponse(body)
	if err != nil {
		return nil, err
	}
	return ToV1(resp)
}
