package oip

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
)

// FuzzScanRequest holds the fast path to its promise: whatever it accepts,
// encoding/json (as DecodeRequest used it before the fast path) accepts too
// and reads into the same envelope. The seeds of FuzzDecodeRequest are
// shared (testdata/fuzz/FuzzDecodeRequest is read by that target only, so
// the interesting ones are repeated here).
func FuzzScanRequest(f *testing.F) {
	for _, s := range scanCases {
		f.Add([]byte(s.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := scanRequest(body)
		if !ok {
			return
		}
		var slow wireRequest
		if err := functions.DecodeJSON(body, &slow); err != nil {
			t.Fatalf("the fast path accepted %q, encoding/json refuses it: %v", body, err)
		}
		if !sameEnvelope(fast, slow) {
			t.Fatalf("%q: fast path read %+v, encoding/json %+v", body, fast, slow)
		}
	})
}

// sameEnvelope compares two envelopes as DecodeRequest sees them: nil and
// empty slices alike only where encoding/json makes them alike.
func sameEnvelope(a, b wireRequest) bool {
	if a.ID != b.ID || len(a.Parameters) != 0 || len(b.Parameters) != 0 ||
		(a.Inputs == nil) != (b.Inputs == nil) || len(a.Inputs) != len(b.Inputs) ||
		(a.Outputs == nil) != (b.Outputs == nil) || !reflect.DeepEqual(a.Outputs, b.Outputs) {
		return false
	}
	for i := range a.Inputs {
		x, y := a.Inputs[i], b.Inputs[i]
		if x.Name != y.Name || x.Datatype != y.Datatype || string(x.Data) != string(y.Data) ||
			(x.Data == nil) != (y.Data == nil) || (x.Shape == nil) != (y.Shape == nil) ||
			!reflect.DeepEqual(append([]int64{}, x.Shape...), append([]int64{}, y.Shape...)) || len(x.Parameters) != 0 {
			return false
		}
	}
	return true
}

var scanCases = []struct {
	body string
	fast bool // the fast path reads it
}{
	{`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`, true},
	{` { "id" : "7" , "inputs" : [ { "name" : "x" , "shape" : [ 2 , 2 ] , "datatype" : "INT64" , "data" : [ [ 1 , 2 ] , [ 3 , 4 ] ] } ] , "outputs" : [ { "name" : "y" } ] } ` + "\n", true},
	{`{"inputs":[{"name":"h","shape":[],"datatype":"FP16","data":1.5}]}`, true},
	{`{"inputs":[{"name":"e","shape":[0,3],"datatype":"UINT64","data":[[],[]]}]}`, true},
	{`{"inputs":[{"name":"n","shape":[-1,-0],"datatype":"INT8","data":[-0.5e-3,0,1E+2]}]}`, true},
	{`{"inputs":[],"outputs":[]}`, true},
	{`{}`, true},
	// Left to encoding/json:
	{`{"Inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, false},                      // key in another case
	{`{"inputs":[{"name":"x","name":"y","shape":[1],"datatype":"FP32","data":[1]}]}`, false},           // repeated key
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"a":1}}`, false}, // parameters
	{`{"inputs":[{"name":"x\u0041","shape":[1],"datatype":"FP32","data":[1]}]}`, false},                // escape
	{"{\"inputs\":[{\"name\":\"\xff\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}", false},     // invalid UTF-8
	{`{"inputs":[{"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]}]}`, false},             // not numbers
	{`{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["a"]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1.0],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[99999999999999999999],"datatype":"FP32","data":[1]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[01]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1.]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[+1]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1,]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[NaN]}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":null}]}`, false},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[[[[[[[[[1]]]]]]]]]}]}`, false}, // deeper than maxScanDepth
	{`{"inputs":[]}{}`, false},
	{`{"inputs":[`, false},
	{``, false},
}

func TestScanRequest(t *testing.T) {
	for _, c := range scanCases {
		fast, ok := scanRequest([]byte(c.body))
		if ok != c.fast {
			t.Errorf("%s: fast path took it: %v, want %v", c.body, ok, c.fast)
			continue
		}
		if !ok {
			continue
		}
		var slow wireRequest
		if err := functions.DecodeJSON([]byte(c.body), &slow); err != nil {
			t.Errorf("%s: encoding/json refuses it: %v", c.body, err)
		} else if !sameEnvelope(fast, slow) {
			t.Errorf("%s: fast %+v, encoding/json %+v", c.body, fast, slow)
		}
	}
}

// TestDecodeRequestErrorsOnePath checks that a request the fast path reads
// but the checks refuse gets encoding/json's wording, the same as one the
// fast path leaves alone.
func TestDecodeRequestErrorsOnePath(t *testing.T) {
	for body, want := range map[string]string{
		`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}`: "needs 2 elements, got 1",
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP33","data":[1]}]}`: `datatype "FP33" is not one of`,
		`{"inputs":[]}`: "has no inputs",
		`{"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[1.5]}]}`: `input "x"`,
	} {
		if _, ok := scanRequest([]byte(body)); !ok {
			t.Fatalf("%s: the fast path should read it", body)
		}
		_, err := DecodeRequest([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", body, err, want)
		}
	}
}

// TestDecodeRequestRepeatedInput covers both ways of finding a repeated
// input name: a scan for a few inputs, a map for many.
func TestDecodeRequestRepeatedInput(t *testing.T) {
	for _, n := range []int{2, 8, 9, 40} {
		var ins []string
		for i := range n - 1 {
			ins = append(ins, fmt.Sprintf(`{"name":"in%d","shape":[1],"datatype":"FP32","data":[1]}`, i))
		}
		ins = append(ins, `{"name":"in0","shape":[1],"datatype":"FP32","data":[1]}`)
		_, err := DecodeRequest([]byte(`{"inputs":[` + strings.Join(ins, ",") + `]}`))
		if err == nil || !strings.Contains(err.Error(), `input "in0" appears more than once`) {
			t.Errorf("%d inputs, the last repeating the first: got %v", n, err)
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeRequest(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w wireRequest
			if err := json.Unmarshal(body, &w); err != nil {
				b.Fatal(err)
			}
			if _, err := checkRequest(&w, DefaultMaxElements); err != nil {
				b.Fatal(err)
			}
		}
	})
}
