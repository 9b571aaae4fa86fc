package oip_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want any // the first input's data
		dt   oip.Datatype
	}{
		{"flat FP32", `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2.5,-3,4e2]}]}`, []float32{1, 2.5, -3, 400}, oip.FP32},
		{"nested FP32", `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2.5],[-3,4e2]]}]}`, []float32{1, 2.5, -3, 400}, oip.FP32},
		{"FP64", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[0.1]}]}`, []float64{0.1}, oip.FP64},
		{"INT64 extremes", `{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[-9223372036854775808,9223372036854775807]}]}`, []int64{-1 << 63, 1<<63 - 1}, oip.INT64},
		{"INT32 written as floats", `{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[3.0,1e2]}]}`, []int32{3, 100}, oip.INT32},
		{"INT8", `{"inputs":[{"name":"x","shape":[2],"datatype":"INT8","data":[-128,127]}]}`, []int8{-128, 127}, oip.INT8},
		{"UINT8", `{"inputs":[{"name":"x","shape":[3],"datatype":"UINT8","data":[0,128,255]}]}`, []uint8{0, 128, 255}, oip.UINT8},
		{"UINT64 max", `{"inputs":[{"name":"x","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}]}`, []uint64{1<<64 - 1}, oip.UINT64},
		{"BOOL", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"BOOL","data":[[true,false]]}]}`, []bool{true, false}, oip.BOOL},
		{"BYTES", `{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","data":["héllo","a\"b\n"]}]}`, []string{"héllo", "a\"b\n"}, oip.BYTES},
		{"FP16", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[65504]}]}`, []float32{65504}, oip.FP16},
		{"scalar tensor", `{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":7}]}`, []float32{7}, oip.FP32},
		{"empty tensor", `{"inputs":[{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}]}`, []float32{}, oip.FP32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := oip.DecodeRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			in := req.Inputs[0]
			if got := in.Data.Value(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("data: got %#v, want %#v", got, tt.want)
			}
			if in.Datatype != tt.dt {
				t.Errorf("datatype: got %s, want %s", in.Datatype, tt.dt)
			}
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		limit int
		want  []string // substrings of the message
	}{
		{"empty body", ``, 0, []string{"empty"}},
		{"malformed JSON", `{"inputs": [`, 0, []string{"invalid JSON"}},
		{"unknown field", `{"input": []}`, 0, []string{"input"}},
		{"no inputs", `{"inputs": []}`, 0, []string{"no inputs"}},
		{"no name", `{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}`, 0, []string{"input 0 has no name"}},
		{"duplicate", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, 0, []string{`"x" appears more than once`}},
		{"bad datatype", `{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT32","data":[1]}]}`, 0, []string{`input "x"`, `"FLOAT32"`, "FP32"}},
		{"lower-case datatype", `{"inputs":[{"name":"x","shape":[1],"datatype":"fp32","data":[1]}]}`, 0, []string{`"fp32" is not one of`}},
		{"no datatype", `{"inputs":[{"name":"x","shape":[1],"data":[1]}]}`, 0, []string{`input "x" has no datatype`}},
		{"no shape", `{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}`, 0, []string{`input "x" has no shape`}},
		{"negative dim", `{"inputs":[{"name":"x","shape":[-1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, 0, []string{`input "x"`, "negative dimension"}},
		{"too few elements", `{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[1,2,3,4]}]}`, 0, []string{`input "x"`, "needs 8 elements, got 4"}},
		{"too many elements", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1,2]}]}`, 0, []string{"needs 1 elements, got 2"}},
		{"no data", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}`, 0, []string{`input "x" has no data`}},
		{"UINT8 300", `{"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","data":[1,300]}]}`, 0, []string{`input "x"`, "element 1", "300 is out of range for UINT8 (0 to 255)"}},
		{"UINT8 negative", `{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[-1]}]}`, 0, []string{"-1 is out of range for UINT8"}},
		{"INT8 128", `{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[128]}]}`, 0, []string{"128 is out of range for INT8 (-128 to 127)"}},
		{"INT64 overflow", `{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[9223372036854775808]}]}`, 0, []string{"out of range for INT64"}},
		{"INT32 fraction", `{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]}`, 0, []string{"want an integer for INT32, got 1.5"}},
		{"FP32 overflow", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}]}`, 0, []string{"1e39 is out of range for FP32"}},
		{"FP16 overflow", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[70000]}]}`, 0, []string{"out of range for FP16"}},
		{"string for FP32", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["1"]}]}`, 0, []string{"want a number for FP32, got a string"}},
		{"number for BOOL", `{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]}`, 0, []string{"want true or false for BOOL, got 1"}},
		{"null element", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[null]}]}`, 0, []string{"want a number for FP32, got null"}},
		{"object element", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[{}]}]}`, 0, []string{"want a number"}},
		{"ragged", `{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[[1,2],[3]]}]}`, 0, []string{"ragged"}},
		{"mixed nesting", `{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,[2,3]]}]}`, 0, []string{"ragged"}},
		{"over limit", `{"inputs":[{"name":"x","shape":[5],"datatype":"FP32","data":[1,2,3,4,5]}]}`, 4, []string{"more than 4 elements"}},
		{"over limit across inputs", `{"inputs":[{"name":"a","shape":[3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[3],"datatype":"FP32","data":[1,2,3]}]}`, 4, []string{`input "b"`, "past 4 elements"}},
		{"huge shape", `{"inputs":[{"name":"x","shape":[100000000000,100000000000],"datatype":"FP32","data":[1]}]}`, 0, []string{"more than"}},
		{"unnamed output", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{}]}`, 0, []string{"output 0 has no name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oip.DecodeRequest([]byte(tt.body), tt.limit)
			if err == nil {
				t.Fatal("got no error")
			}
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest {
				t.Fatalf("got %T %v, want a 400 *functions.Error", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(fe.Message, w) {
					t.Errorf("message %q does not contain %q", fe.Message, w)
				}
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	req, err := oip.DecodeRequest([]byte(`{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[1,2]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	in := req.Input("x")
	got, err := in.Int64s()
	if err != nil || !reflect.DeepEqual(got, []int64{1, 2}) {
		t.Errorf("Int64s: got %v, %v; want [1 2]", got, err)
	}
	_, err = in.Float32s()
	if functions.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), `input "x" is INT64, want FP32`) {
		t.Errorf("Float32s on INT64: got %v, want a 400 naming both types", err)
	}
	if req.Input("y") != nil {
		t.Error(`Input("y"): got an input, want nil`)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	resp := &oip.InferenceResponse{
		ModelName: "m",
		ID:        "42",
		Outputs: []oip.ResponseOutput{
			oip.NewOutput("p", []int64{1, 3}, []float32{0.25, 0.5, 0.25}),
			oip.NewOutput("l", []int64{1}, []int64{1}),
			oip.NewOutput("b", []int64{2}, []bool{true, false}),
			oip.NewOutput("u", []int64{2}, []uint8{7, 255}),
			oip.NewOutput("s", []int64{1}, []string{"<é>"}),
		},
	}
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"model_name":"m","id":"42","outputs":[` +
		`{"name":"p","datatype":"FP32","shape":[1,3],"data":[0.25,0.5,0.25]},` +
		`{"name":"l","datatype":"INT64","shape":[1],"data":[1]},` +
		`{"name":"b","datatype":"BOOL","shape":[2],"data":[true,false]},` +
		`{"name":"u","datatype":"UINT8","shape":[2],"data":[7,255]},` +
		`{"name":"s","datatype":"BYTES","shape":[1],"data":["\u003cé\u003e"]}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back oip.InferenceResponse
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, resp) {
		t.Errorf("round trip: got %+v, want %+v", back, *resp)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	req := &oip.InferenceRequest{
		ID: "a",
		Inputs: []oip.RequestInput{
			{Name: "x", Shape: []int64{1, 2}, Datatype: oip.FP64, Data: oip.NewData([]float64{0.1, 1e-300})},
		},
		Outputs: []oip.RequestOutput{{Name: "y"}},
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back oip.InferenceRequest
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, req) {
		t.Errorf("round trip: got %+v, want %+v", back, *req)
	}
	if !back.Wants("y") || back.Wants("z") {
		t.Error("Wants: want y and not z")
	}
}

func TestNaNEncodesAsNull(t *testing.T) {
	var zero float32
	resp := &oip.InferenceResponse{ModelName: "m", Outputs: []oip.ResponseOutput{
		oip.NewOutput("y", []int64{2}, []float32{zero / zero, 1}),
	}}
	b, err := resp.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) || !strings.Contains(string(b), `"data":[null,1]`) {
		t.Errorf("got %s, want valid JSON with null for NaN", b)
	}
}

func TestFromV1(t *testing.T) {
	input := oip.TensorMetadata{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 4}}
	tests := []struct {
		name      string
		body      string
		wantShape []int64
		wantData  []float32
		wantErr   string
	}{
		{"two rows", `{"instances": [[1,2,3,4],[5,6,7,8]]}`, []int64{2, 4}, []float32{1, 2, 3, 4, 5, 6, 7, 8}, ""},
		{"scalars", `{"instances": [1,2]}`, []int64{2}, []float32{1, 2}, ""},
		{"empty", `{"instances": []}`, nil, nil, "no instances"},
		{"missing", `{}`, nil, nil, "no instances"},
		{"not an array", `{"instances": 3}`, nil, nil, "must be an array"},
		{"ragged", `{"instances": [[1,2],[3]]}`, nil, nil, "ragged"},
		{"bad value", `{"instances": [["a"]]}`, nil, nil, "want a number for FP32"},
		{"malformed", `{"instances": [`, nil, nil, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := oip.FromV1([]byte(tt.body), input)
			if tt.wantErr != "" {
				if functions.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want a 400 containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			in := req.Inputs[0]
			got, _ := in.Float32s()
			if in.Name != "input" || in.Datatype != oip.FP32 || !reflect.DeepEqual(in.Shape, tt.wantShape) || !reflect.DeepEqual(got, tt.wantData) {
				t.Errorf("got %s %s %v %v, want input FP32 %v %v", in.Name, in.Datatype, in.Shape, got, tt.wantShape, tt.wantData)
			}
		})
	}
}

func TestToV1(t *testing.T) {
	tests := []struct {
		name string
		out  oip.ResponseOutput
		want string
	}{
		{"vector", oip.NewOutput("label", []int64{3}, []int64{0, 1, 2}), `{"predictions":[0,1,2]}`},
		{"matrix", oip.NewOutput("p", []int64{2, 2}, []float32{1, 0, 0.5, 0.5}), `{"predictions":[[1,0],[0.5,0.5]]}`},
		{"rank 3", oip.NewOutput("p", []int64{2, 1, 2}, []int32{1, 2, 3, 4}), `{"predictions":[[[1,2]],[[3,4]]]}`},
		{"scalar", oip.NewOutput("s", []int64{}, []float64{2.5}), `{"predictions":[2.5]}`},
		{"empty rows", oip.NewOutput("p", []int64{2, 0}, []float32{}), `{"predictions":[[],[]]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := oip.ToV1(&oip.InferenceResponse{Outputs: []oip.ResponseOutput{tt.out}})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := oip.ToV1(&oip.InferenceResponse{}); err == nil {
		t.Error("no outputs: got no error")
	}
	if _, err := oip.ToV1(&oip.InferenceResponse{Outputs: []oip.ResponseOutput{oip.NewOutput("x", []int64{3}, []float32{1})}}); err == nil {
		t.Error("shape/data mismatch: got no error")
	}
}

func TestTensorMetadataAccepts(t *testing.T) {
	m := oip.TensorMetadata{Name: "x", Datatype: oip.FP32, Shape: []int64{-1, 4}}
	tests := []struct {
		shape []int64
		want  bool
	}{
		{[]int64{1, 4}, true},
		{[]int64{100, 4}, true},
		{[]int64{1, 5}, false},
		{[]int64{4}, false},
		{[]int64{1, 4, 1}, false},
	}
	for _, tt := range tests {
		if got := m.Accepts(tt.shape); got != tt.want {
			t.Errorf("Accepts(%v): got %v, want %v", tt.shape, got, tt.want)
		}
	}
}
