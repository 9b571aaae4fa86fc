package oip_test

import (
	"errors"
	"net/http"
	"regexp"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// goType matches what a Go type looks like in a message: a qualified name
// (oip.wireRequest), a slice or map type, or a sized Go number type.
var goType = regexp.MustCompile(`\b[a-z]\w*\.[A-Za-z]\w*\b|\[\][A-Za-z*]|map\[|\b(u?int|float)(8|16|32|64)\b`)

// TestDecodeRequestNamesFields checks that a request whose envelope has a
// value of the wrong kind is answered in terms of its own fields, with the
// array indices that find the value, and never with the Go types the codec
// decodes into.
func TestDecodeRequestNamesFields(t *testing.T) {
	const x = `{"name":"x","shape":[1],"datatype":"FP32","data":[1]}`
	tests := []struct {
		name, body, want string
	}{
		{"array for the request", `[]`, `the request body: want an object, got an array (offset 1)`},
		{"string for the request", `"x"`, `the request body: want an object, got a string (offset 3)`},
		{"object for inputs", `{"inputs": {}}`, `inputs: want an array of objects, got an object (offset 12)`},
		{"number for an input", `{"inputs": [1]}`, `inputs[0]: want an object, got a number (offset 13)`},
		{"number for a name", `{"inputs": [{"name": 3}]}`, `inputs[0].name: want a string, got a number (offset 22)`},
		{"string for a shape", `{"inputs": [{"name": "x", "shape": "a"}]}`, `inputs[0].shape: want an array of integers, got a string (offset 38)`},
		{"string in the second input's shape", `{"inputs": [` + x + `, {"name": "y", "shape": [1, "a"]}]}`, `inputs[1].shape[1]: want an integer, got a string (offset 97)`},
		{"fraction in a shape", `{"inputs": [{"name": "x", "shape": [1.5]}]}`, `inputs[0].shape[0]: want an integer, got 1.5 (offset 39)`},
		{"number for a datatype", `{"inputs": [{"name": "x", "datatype": 3}]}`, `inputs[0].datatype: want a string, got a number (offset 39)`},
		{"number for parameters", `{"inputs": [{"name": "x", "parameters": 3}]}`, `inputs[0].parameters: want an object, got a number (offset 41)`},
		{"array for parameters", `{"parameters": []}`, `parameters: want an object, got an array (offset 16)`},
		{"number for an output", `{"inputs": [` + x + `], "outputs": [{"name": "a"}, 3]}`, `outputs[1]: want an object, got a number (offset 96)`},
		{"bool for an id", `{"id": true, "inputs": [` + x + `]}`, `id: want a string, got true (offset 11)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oip.DecodeRequest([]byte(tt.body))
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest {
				t.Fatalf("got %v, want a 400 *functions.Error", err)
			}
			if fe.Message != tt.want {
				t.Errorf("message:\ngot  %q\nwant %q", fe.Message, tt.want)
			}
			if m := goType.FindString(fe.Message); m != "" {
				t.Errorf("message %q names a Go type (%q)", fe.Message, m)
			}
		})
	}
}

// TestFromV1NamesFields is the same for a KServe V1 request.
func TestFromV1NamesFields(t *testing.T) {
	input := oip.TensorMetadata{Name: "input", Datatype: oip.FP32, Shape: []int64{-1, 4}}
	_, err := oip.FromV1([]byte(`[[1, 2, 3, 4]]`), input)
	want := `the request body: want an object, got an array (offset 1)`
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest || fe.Message != want {
		t.Errorf("got %v, want a 400 %q", err, want)
	}
}
