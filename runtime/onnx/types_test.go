package onnx_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// TestElementTypes passes a tensor of every supported type through
// testdata/types.onnx (out_X = -X, !X or X; see testdata/types.py).
func TestElementTypes(t *testing.T) {
	p := onnx.New()
	model, _ := filepath.Abs(filepath.Join("testdata", "types.onnx"))
	if err := p.Init(context.Background(), functions.Config{Name: "types", Model: model}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	defer p.Close()
	body := `{"inputs":[
		{"name":"f32","shape":[1,2],"datatype":"FP32","data":[1.5,-2]},
		{"name":"f64","shape":[1,2],"datatype":"FP64","data":[0.1,1e300]},
		{"name":"i8","shape":[1,2],"datatype":"INT8","data":[-127,5]},
		{"name":"i32","shape":[1,2],"datatype":"INT32","data":[2147483647,-7]},
		{"name":"i64","shape":[1,2],"datatype":"INT64","data":[9007199254740993,-1]},
		{"name":"u8","shape":[1,2],"datatype":"UINT8","data":[0,255]},
		{"name":"b","shape":[1,2],"datatype":"BOOL","data":[true,false]},
		{"name":"s","shape":[1,2],"datatype":"BYTES","data":["héllo",""]}]}`
	resp, err := p.Predict(context.Background(), &functions.Request{Body: []byte(body)})
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	const want = `{"model_name":"types","outputs":[` +
		`{"name":"out_f32","datatype":"FP32","shape":[1,2],"data":[-1.5,2]},` +
		`{"name":"out_f64","datatype":"FP64","shape":[1,2],"data":[-0.1,-1e+300]},` +
		`{"name":"out_i8","datatype":"INT8","shape":[1,2],"data":[127,-5]},` +
		`{"name":"out_i32","datatype":"INT32","shape":[1,2],"data":[-2147483647,7]},` +
		`{"name":"out_i64","datatype":"INT64","shape":[1,2],"data":[-9007199254740993,1]},` +
		`{"name":"out_u8","datatype":"UINT8","shape":[1,2],"data":[0,255]},` +
		`{"name":"out_b","datatype":"BOOL","shape":[1,2],"data":[false,true]},` +
		`{"name":"out_s","datatype":"BYTES","shape":[1,2],"data":["héllo",""]}]}`
	if got := string(resp.Body); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
