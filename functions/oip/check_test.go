package oip_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// irisMetadata is what the iris sample's model declares.
var irisMetadata = oip.ModelMetadata{Name: "iris", Platform: "onnxruntime_onnx",
	Inputs:  []oip.TensorMetadata{{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 4}}},
	Outputs: []oip.TensorMetadata{{Name: "label", Datatype: oip.INT64, Shape: []int64{-1}}, {Name: "probabilities", Datatype: oip.FP32, Shape: []int64{-1, 3}}}}

// twoInputs is a model with two inputs of different kinds.
var twoInputs = oip.ModelMetadata{Name: "ranker",
	Inputs: []oip.TensorMetadata{{Name: "ids", Datatype: oip.INT32, Shape: []int64{-1, 8}},
		{Name: "mask", Datatype: oip.BOOL, Shape: []int64{-1, 8}}},
	Outputs: []oip.TensorMetadata{{Name: "scores", Datatype: oip.FP32, Shape: []int64{-1}}}}

func decodeRequest(t *testing.T, body string) *oip.InferenceRequest {
	t.Helper()
	req, err := oip.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatalf("DecodeRequest(%s): %v", body, err)
	}
	return req
}

func TestCheckRequest(t *testing.T) {
	tests := []struct {
		name string
		md   oip.ModelMetadata
		body string
		want []functions.FieldError // nil: fits
	}{
		{"fits", irisMetadata, `{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1,2,3,4,5,6,7,8]}]}`, nil},
		{"fits, outputs named", irisMetadata, `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}], "outputs": [{"name": "label"}]}`, nil},
		{"shape", irisMetadata, `{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1,2,3]}]}`,
			[]functions.FieldError{{Path: "$.inputs[0].shape", Message: "[1,3] does not match the model's [-1,4] (-1 takes any size)"}}},
		{"rank", irisMetadata, `{"inputs": [{"name": "input", "shape": [4], "datatype": "FP32", "data": [1,2,3,4]}]}`,
			[]functions.FieldError{{Path: "$.inputs[0].shape", Message: "[4] does not match the model's [-1,4] (-1 takes any size)"}}},
		{"every failure at once", irisMetadata,
			`{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1,2,3]}, {"name": "extra", "shape": [1], "datatype": "BOOL", "data": [true]}],
			  "outputs": [{"name": "label"}, {"name": "logits"}]}`,
			[]functions.FieldError{
				{Path: "$.inputs[0].datatype", Message: "FP64 does not match the model's FP32"},
				{Path: "$.inputs[0].shape", Message: "[1,3] does not match the model's [-1,4] (-1 takes any size)"},
				{Path: "$.inputs[1].name", Message: `"extra" is not an input of the model; its inputs are "input" FP32 [-1,4]`},
				{Path: "$.outputs[1].name", Message: `"logits" is not an output of the model; its outputs are "label", "probabilities"`},
			}},
		{"missing and misnamed", twoInputs, `{"inputs": [{"name": "idz", "shape": [1, 8], "datatype": "INT32", "data": [1,2,3,4,5,6,7,8]}]}`,
			[]functions.FieldError{
				{Path: "$.inputs[0].name", Message: `"idz" is not an input of the model; its inputs are "ids" INT32 [-1,8], "mask" BOOL [-1,8]`},
				{Path: "$.inputs", Message: `missing input "ids" (INT32 [-1,8])`},
				{Path: "$.inputs", Message: `missing input "mask" (BOOL [-1,8])`},
			}},
		{"no metadata for the tensor's kind", oip.ModelMetadata{Name: "free", Inputs: []oip.TensorMetadata{{Name: "x"}}},
			`{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT8", "data": [1,2,3,4]}]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := decodeRequest(t, tt.body)
			if got := oip.Mismatches(req, tt.md); !slices.Equal(got, tt.want) {
				t.Errorf("Mismatches:\ngot  %q\nwant %q", got, tt.want)
			}
			err := oip.CheckRequest(req, tt.md)
			if tt.want == nil {
				if err != nil {
					t.Errorf("CheckRequest = %v, want nil", err)
				}
				return
			}
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity || !slices.Equal(fe.Fields, tt.want) {
				t.Fatalf("CheckRequest = %v, want a 422 with the fields", err)
			}
			prefix := `inference request does not fit model "` + tt.md.Name + `": ` + tt.want[0].Path + ": " + tt.want[0].Message
			if !strings.HasPrefix(fe.Message, prefix) || strings.Count(fe.Message, "; $.") != len(tt.want)-1 {
				t.Errorf("message %q, want every field after %q", fe.Message, prefix)
			}
		})
	}
}

// TestCheckRequestAllocatesNothing keeps the check off the allocation
// profile of a request that fits: it runs on every ONNX prediction.
func TestCheckRequestAllocatesNothing(t *testing.T) {
	req := decodeRequest(t, `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}], "outputs": [{"name": "label"}]}`)
	if n := testing.AllocsPerRun(100, func() {
		if oip.CheckRequest(req, irisMetadata) != nil {
			t.Fatal("does not fit")
		}
	}); n != 0 {
		t.Errorf("CheckRequest allocates %v times for a request that fits, want 0", n)
	}
}

func BenchmarkCheckRequest(b *testing.B) {
	req, err := oip.DecodeRequest([]byte(`{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}]}`))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if oip.CheckRequest(req, irisMetadata) != nil {
			b.Fatal("does not fit")
		}
	}
}

// TestRequestSchema holds requests to the schema RequestSchema gives, with
// a real JSON Schema validator: what the server takes, the schema takes,
// and a request of the wrong shape or datatype it refuses.
func TestRequestSchema(t *testing.T) {
	tests := []struct {
		name  string
		md    oip.ModelMetadata
		body  string
		valid bool
		want  string // a failing field's path, for an invalid body
	}{
		{"iris flat", irisMetadata, `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}`, true, ""},
		{"iris nested, with id and outputs", irisMetadata, `{"id": "b", "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2], [7, 3.2, 4.7, 1.4]]}], "outputs": [{"name": "probabilities"}]}`, true, ""},
		{"iris shape", irisMetadata, `{"inputs": [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [1,2,3,4,5]}]}`, false, "$.inputs[0].shape[1]"},
		{"iris datatype", irisMetadata, `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1,2,3,4]}]}`, false, "$.inputs[0].datatype"},
		{"iris name", irisMetadata, `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}]}`, false, "$.inputs[0].name"},
		{"iris output", irisMetadata, `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}], "outputs": [{"name": "logits"}]}`, false, "$.outputs[0].name"},
		{"iris element", irisMetadata, `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1,2,"3",4]}]}`, false, "$.inputs[0].data[2]"},
		{"iris no inputs", irisMetadata, `{"inputs": []}`, false, "$.inputs"},
		{"unknown field", irisMetadata, `{"input": []}`, false, "$.input"},
		{"two inputs", twoInputs, `{"inputs": [{"name": "mask", "shape": [1, 8], "datatype": "BOOL", "data": [true,true,true,true,false,false,false,false]},
			{"name": "ids", "shape": [1, 8], "datatype": "INT32", "data": [1,2,3,4,0,0,0,0]}]}`, true, ""},
		{"two inputs, one twice", twoInputs, `{"inputs": [{"name": "ids", "shape": [1, 8], "datatype": "INT32", "data": [1,2,3,4,0,0,0,0]},
			{"name": "ids", "shape": [1, 8], "datatype": "INT32", "data": [1,2,3,4,0,0,0,0]}]}`, false, "$.inputs"},
		{"INT32 range", twoInputs, `{"inputs": [{"name": "mask", "shape": [1, 1], "datatype": "BOOL", "data": [true]},
			{"name": "ids", "shape": [1, 1], "datatype": "INT32", "data": [3000000000]}]}`, false, "$.inputs[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := oip.RequestSchema(tt.md)
			if strings.Contains(string(raw), "$ref") {
				t.Errorf("schema has a $ref: %s", raw)
			}
			v, err := functions.NewValidator(raw)
			if err != nil {
				t.Fatalf("schema does not compile: %v\n%s", err, raw)
			}
			err = v.Check([]byte(tt.body))
			if tt.valid {
				if err != nil {
					t.Errorf("valid request refused: %v", err)
				}
				if _, err := oip.DecodeRequest([]byte(tt.body)); err != nil {
					t.Errorf("the server refuses what the schema takes: %v", err)
				}
				return
			}
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity {
				t.Fatalf("invalid request: %v, want a 422", err)
			}
			if !slices.ContainsFunc(fe.Fields, func(f functions.FieldError) bool { return strings.HasPrefix(f.Path, tt.want) }) {
				t.Errorf("fields %q, want one at %s", fe.Fields, tt.want)
			}
		})
	}
}

func TestRequestSchemaReadsAsAForm(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(oip.RequestSchema(irisMetadata), &s); err != nil {
		t.Fatal(err)
	}
	input := s["properties"].(map[string]any)["inputs"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	if got := input["name"].(map[string]any)["const"]; got != "input" {
		t.Errorf("name const %v", got)
	}
	if got := input["datatype"].(map[string]any)["const"]; got != "FP32" {
		t.Errorf("datatype const %v", got)
	}
	prefix := input["shape"].(map[string]any)["prefixItems"].([]any)
	if len(prefix) != 2 || prefix[1].(map[string]any)["const"] != 4.0 || prefix[0].(map[string]any)["minimum"] != 0.0 {
		t.Errorf("shape prefixItems %v, want any size then 4", prefix)
	}
	// Members stay in the order written: name, datatype, shape, data.
	raw := string(oip.RequestSchema(irisMetadata))
	if a, b, c := strings.Index(raw, `"name":{"const"`), strings.Index(raw, `"datatype":{"const"`), strings.Index(raw, `"data":{`); !(a < b && b < c) {
		t.Errorf("members out of order: %s", raw)
	}
}

func TestResponseSchema(t *testing.T) {
	v, err := functions.NewValidator(oip.ResponseSchema(irisMetadata))
	if err != nil {
		t.Fatal(err)
	}
	resp := oip.InferenceResponse{ModelName: "iris", Outputs: []oip.ResponseOutput{
		oip.NewOutput("label", []int64{1}, []int64{2}),
		oip.NewOutput("probabilities", []int64{1, 3}, []float32{0.1, 0.2, 0.7}),
	}}
	body, err := resp.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Check(body); err != nil {
		t.Errorf("a response of the model fails its schema: %v\n%s", err, body)
	}
	if err := v.Check([]byte(`{"model_name": "iris", "outputs": [{"name": "label", "datatype": "FP32", "shape": [1], "data": [2]}]}`)); err == nil {
		t.Error("an output of the wrong datatype passes")
	}
}
