package knative_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/adapters/knative"
	"github.com/cortexfn/cortex/functions"
)

// echo is an engine that costs nothing, so the benchmarks measure the
// carrier.
type echo struct{}

func (echo) Name() string   { return "bench" }
func (echo) MaxBody() int64 { return 6 << 20 }
func (echo) Ready() bool    { return true }
func (echo) Invoke(_ context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.Bytes(http.StatusOK, "application/json", req.Body), nil
}

var prediction1KB = func() string {
	s := `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [` + strings.Repeat("5.1, 3.5, 1.4, 0.2, ", 45)
	s = s[:len(s)-2] + `]}]}`
	return s + strings.Repeat(" ", 1024-len(s))
}()

// BenchmarkCarrier measures the CloudEvents carrier's added cost for a 1 KB
// prediction, from the HTTP request to the written reply event.
func BenchmarkCarrier(b *testing.B) {
	h := knative.Wrap(echo{}, http.NotFoundHandler())
	structured, _ := json.Marshal(map[string]any{
		"specversion": "1.0", "id": "evt-1", "source": "/sources/ping", "type": "dev.cortex.flower",
		"datacontenttype": "application/json", "data": json.RawMessage(strings.TrimSpace(prediction1KB)),
	})
	for _, mode := range []string{"binary", "structured"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(prediction1KB)))
			for b.Loop() {
				var r *http.Request
				if mode == "binary" {
					r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(prediction1KB))
					r.Header.Set("Ce-Specversion", "1.0")
					r.Header.Set("Ce-Id", "evt-1")
					r.Header.Set("Ce-Source", "/sources/ping")
					r.Header.Set("Ce-Type", "dev.cortex.flower")
					r.Header.Set("Content-Type", "application/json")
				} else {
					r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(structured)))
					r.Header.Set("Content-Type", "application/cloudevents+json")
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
