package onnx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// irisRow is a distinct, valid iris input for each i.
func irisRow(i int) []float32 {
	return []float32{4.3 + float32(i%37)*0.1, 2.0 + float32(i%23)*0.1, 1.0 + float32(i%59)*0.1, 0.1 + float32(i%25)*0.1}
}

func irisBody(rows ...[]float32) string {
	var data []float32
	for _, r := range rows {
		data = append(data, r...)
	}
	b, _ := json.Marshal(data)
	return fmt.Sprintf(`{"id":"r","inputs":[{"name":"input","shape":[%d,4],"datatype":"FP32","data":%s}]}`, len(rows), b)
}

// sameAnswer checks that two OIP responses hold the same outputs: labels
// exactly, probabilities to float32 rounding (a batched run may sum in
// another order).
func sameAnswer(got, want []byte) error {
	g, err := oip.DecodeResponse(got)
	if err != nil {
		return fmt.Errorf("decoding %s: %w", got, err)
	}
	w, err := oip.DecodeResponse(want)
	if err != nil {
		return fmt.Errorf("decoding %s: %w", want, err)
	}
	if len(g.Outputs) != len(w.Outputs) {
		return fmt.Errorf("got %d outputs, want %d", len(g.Outputs), len(w.Outputs))
	}
	for i := range w.Outputs {
		go_, wo := g.Outputs[i], w.Outputs[i]
		if go_.Name != wo.Name || fmt.Sprint(go_.Shape) != fmt.Sprint(wo.Shape) || go_.Datatype != wo.Datatype {
			return fmt.Errorf("output %d: got %s %v %s, want %s %v %s", i, go_.Name, go_.Shape, go_.Datatype, wo.Name, wo.Shape, wo.Datatype)
		}
		if gl, ok := oip.Values[int64](go_.Data); ok {
			wl, _ := oip.Values[int64](wo.Data)
			if fmt.Sprint(gl) != fmt.Sprint(wl) {
				return fmt.Errorf("output %s: got %v, want %v", go_.Name, gl, wl)
			}
			continue
		}
		gp, _ := oip.Values[float32](go_.Data)
		wp, _ := oip.Values[float32](wo.Data)
		if len(gp) != len(wp) {
			return fmt.Errorf("output %s: got %d values, want %d", go_.Name, len(gp), len(wp))
		}
		for k := range wp {
			if math.Abs(float64(gp[k]-wp[k])) > 1e-6 {
				return fmt.Errorf("output %s[%d]: got %v, want %v", go_.Name, k, gp[k], wp[k])
			}
		}
	}
	return nil
}

func TestPredictBatchMatchesPredict(t *testing.T) {
	p := newIris(t)
	var reqs []*functions.Request
	for i := range 40 {
		reqs = append(reqs, &functions.Request{ID: fmt.Sprint(i), Body: []byte(irisBody(irisRow(i)))})
	}
	// Members with several rows, and members asking for one output, join
	// their own groups.
	reqs = append(reqs,
		&functions.Request{Body: []byte(irisBody(irisRow(100), irisRow(101), irisRow(102)))},
		&functions.Request{Body: []byte(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[6.3,3.3,6.0,2.5]}],"outputs":[{"name":"probabilities"}]}`)},
		&functions.Request{Body: []byte(`{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[6.3,3.3,6.0,2.5,5.1,3.5,1.4,0.2]}],"outputs":[{"name":"label"}]}`)},
	)
	resps, err := p.PredictBatch(context.Background(), reqs)
	if err != nil {
		t.Fatalf("PredictBatch: %v", err)
	}
	if len(resps) != len(reqs) {
		t.Fatalf("got %d responses, want %d", len(resps), len(reqs))
	}
	for i, req := range reqs {
		want, err := p.Predict(context.Background(), req)
		if err != nil {
			t.Fatalf("Predict %d: %v", i, err)
		}
		if got := resps[i].StatusCode(); got != http.StatusOK {
			t.Errorf("request %d: got status %d (%s), want 200", i, got, resps[i].Body)
			continue
		}
		if err := sameAnswer(resps[i].Body, want.Body); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
}

func TestPredictBatchMixed(t *testing.T) {
	p := newIris(t)
	tests := []struct {
		name   string
		body   string
		model  string
		status int
	}{
		{name: "good 1", body: irisBody(irisRow(1)), status: 200},
		{name: "malformed JSON", body: `{"inputs":[`, status: 400},
		{name: "good 2", body: irisBody(irisRow(2), irisRow(3)), status: 200},
		{name: "wrong datatype", body: `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`, status: 422},
		{name: "unknown input", body: `{"inputs":[{"name":"nope","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, status: 422},
		{name: "wrong shape", body: `{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, status: 422},
		{name: "unknown output", body: `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"nope"}]}`, status: 422},
		{name: "too few elements", body: `{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[1,2,3,4]}]}`, status: 400},
		{name: "other model", body: irisBody(irisRow(4)), model: "other", status: 404},
		{name: "good 3", body: irisBody(irisRow(5)), status: 200},
	}
	reqs := make([]*functions.Request, len(tests))
	for i, tc := range tests {
		reqs[i] = &functions.Request{ID: tc.name, Body: []byte(tc.body), Model: tc.model}
	}
	resps, err := p.PredictBatch(context.Background(), reqs)
	if err != nil {
		t.Fatalf("PredictBatch: %v", err)
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := resps[i]
			if got.StatusCode() != tc.status {
				t.Fatalf("status: got %d (%s), want %d", got.StatusCode(), got.Body, tc.status)
			}
			if tc.status != 200 {
				var e struct {
					Error  string
					Fields []functions.FieldError
				}
				if err := json.Unmarshal(got.Body, &e); err != nil || e.Error == "" {
					t.Errorf("body: got %s, want {\"error\": \"...\"}", got.Body)
				}
				if (tc.status == http.StatusUnprocessableEntity) != (len(e.Fields) > 0) {
					t.Errorf("body %s: a 422, and only a 422, lists the fields at fault", got.Body)
				}
				return
			}
			want, err := p.Predict(context.Background(), reqs[i])
			if err != nil {
				t.Fatal(err)
			}
			if err := sameAnswer(got.Body, want.Body); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPredictBatchClosed(t *testing.T) {
	p := newIris(t)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := p.PredictBatch(context.Background(), []*functions.Request{{Body: []byte(irisBody(irisRow(1)))}})
	if got := functions.StatusOf(err); got != http.StatusServiceUnavailable {
		t.Errorf("got %v (status %d), want 503", err, got)
	}
}

func BenchmarkPredictBatch(b *testing.B) {
	p := newIris(b)
	for _, n := range []int{1, 8, 32} {
		reqs := make([]*functions.Request, n)
		for i := range reqs {
			reqs[i] = &functions.Request{Body: []byte(irisBody(irisRow(i)))}
		}
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := p.PredictBatch(context.Background(), reqs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
