package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// BenchmarkHandler is the request path of the iris function without the
// network: the HTTP handler Serve serves (carriers, runtime, the built-in
// ONNX predictor), one single-row request per op, from parallel callers,
// with batching off and on. Its allocs/op are the runtime's per-request
// allocations; BENCHMARKS.md has the figures over the network.
func BenchmarkHandler(b *testing.B) {
	model, err := filepath.Abs(filepath.Join("..", "samples", "iris", "model", "iris.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 150)
	for i := range bodies {
		bodies[i] = irisRequest(i).Body
	}
	for _, bc := range []struct {
		name     string
		batching runtime.Batching
	}{
		{"batching=off", runtime.Batching{}},
		{"batching=on", runtime.Batching{MaxBatchSize: 32, BatchInterval: runtime.Duration(time.Millisecond)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rt, err := runtime.New(onnx.New(), runtime.Config{Name: "iris",
				Predictor: runtime.PredictorConfig{Type: "onnx", Model: model},
				Limits:    runtime.Limits{MaxConcurrency: 64, MaxQueue: 1024}, Batching: bc.batching},
				runtime.WithLogger(quietLogger()))
			if err != nil {
				b.Fatal(err)
			}
			if err := rt.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = rt.Shutdown(context.Background()) }()
			h := rt.Handler()
			b.SetParallelism(32) // 64 callers on 2 cores, as in the batching bench
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/predict", bytes.NewReader(bodies[i%len(bodies)]))
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Error(fmt.Sprintf("status %d: %s", w.Code, w.Body))
						return
					}
					i++
				}
			})
		})
	}
}
