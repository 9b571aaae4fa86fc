package oip_test

import (
	"fmt"

	"github.com/cortexfn/cortex/functions/oip"
)

func ExampleDecodeRequest() {
	body := []byte(`{
		"id": "42",
		"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
		            "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}]
	}`)
	req, err := oip.DecodeRequest(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	x, err := req.Input("input").Float32s()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.ID, req.Inputs[0].Shape, x)
	// Output: 42 [2 4] [5.1 3.5 1.4 0.2 6.7 3 5.2 2.3]
}

func ExampleDecodeRequest_error() {
	_, err := oip.DecodeRequest([]byte(`{"inputs": [{"name": "pixels", "shape": [2], "datatype": "UINT8", "data": [12, 300]}]}`))
	fmt.Println(err)
	// Output: 400 Bad Request: input "pixels": element 1: 300 is out of range for UINT8 (0 to 255)
}

func ExampleInferenceResponse_MarshalJSON() {
	resp := &oip.InferenceResponse{
		ModelName: "iris",
		ID:        "42",
		Outputs: []oip.ResponseOutput{
			oip.NewOutput("label", []int64{1}, []int64{0}),
			oip.NewOutput("probabilities", []int64{1, 3}, []float32{0.97, 0.03, 0}),
		},
	}
	b, _ := resp.MarshalJSON()
	fmt.Println(string(b))
	// Output: {"model_name":"iris","id":"42","outputs":[{"name":"label","datatype":"INT64","shape":[1],"data":[0]},{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":[0.97,0.03,0]}]}
}

func ExampleFromV1() {
	input := oip.TensorMetadata{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 4}}
	req, err := oip.FromV1([]byte(`{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}`), input)
	if err != nil {
		fmt.Println(err)
		return
	}
	in := req.Inputs[0]
	fmt.Println(in.Name, in.Datatype, in.Shape)
	// Output: input FP32 [2 4]
}

func ExampleToV1() {
	resp := &oip.InferenceResponse{Outputs: []oip.ResponseOutput{
		oip.NewOutput("label", []int64{2}, []int64{0, 2}),
	}}
	b, _ := oip.ToV1(resp)
	fmt.Println(string(b))
	// Output: {"predictions":[0,2]}
}
