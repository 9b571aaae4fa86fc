package oip_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// FuzzDecodeRequest checks that the decoder never panics, answers every bad
// body with a 400, and that what it accepts is consistent and survives a
// round trip. Seeds live in testdata/fuzz/FuzzDecodeRequest as well.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`,
		`{"id":"7","inputs":[{"name":"x","shape":[2,2],"datatype":"INT64","data":[[1,2],[3,4]]}],"outputs":[{"name":"y"}]}`,
		`{"inputs":[{"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},{"name":"s","shape":[1],"datatype":"BYTES","data":["a\u00e9"]}]}`,
		`{"inputs":[{"name":"u","shape":[3],"datatype":"UINT8","data":[0,255,300]}]}`,
		`{"inputs":[{"name":"h","shape":[],"datatype":"FP16","data":1.5}]}`,
		`{"inputs":[{"name":"r","shape":[3],"datatype":"FP64","data":[[1],[2,3]]}]}`,
		`{"inputs":[{"name":"n","shape":[-1],"datatype":"INT8","data":[]}]}`,
		`{"inputs":[{"name":"e","shape":[0,3],"datatype":"UINT64","data":[[],[]]}]}`,
		`{"inputs":[`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := oip.DecodeRequest(body, 1<<16)
		if err != nil {
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest || fe.Message == "" {
				t.Fatalf("got %T %v, want a 400 *functions.Error with a message", err, err)
			}
			return
		}
		total := 0
		for _, in := range req.Inputs {
			n := int64(1)
			for _, d := range in.Shape {
				if d < 0 {
					t.Fatalf("accepted negative dimension in %v", in.Shape)
				}
				n *= d
			}
			if int64(in.Data.Len()) != n {
				t.Fatalf("input %q: %d elements for shape %v", in.Name, in.Data.Len(), in.Shape)
			}
			if !in.Datatype.Valid() {
				t.Fatalf("accepted datatype %q", in.Datatype)
			}
			total += in.Data.Len()
		}
		if total > 1<<16 {
			t.Fatalf("accepted %d elements, over the limit", total)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encoding an accepted request: %v", err)
		}
		again, err := oip.DecodeRequest(b, 1<<16)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		for i := range req.Inputs {
			a, b := req.Inputs[i], again.Inputs[i]
			if a.Name != b.Name || a.Datatype != b.Datatype || !reflect.DeepEqual(a.Shape, b.Shape) || a.Data.Len() != b.Data.Len() {
				t.Fatalf("round trip changed input %d: %+v -> %+v", i, a, b)
			}
		}
	})
}
