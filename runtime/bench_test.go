package runtime_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
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
func BenchmarkHandler(b *testing.B) { benchHandlers(b, "/predict") }

// BenchmarkHandlerOIP is BenchmarkHandler's request on the Open Inference
// Protocol route, /v2/models/iris/infer: the request of the serving
// benchmark (internal/bench/serving) with batching off, and of the floor
// bench's batching row (internal/bench/floor) with it on.
func BenchmarkHandlerOIP(b *testing.B) { benchHandlers(b, "/v2/models/iris/infer") }

// benchHandlers runs benchHandler on path with batching off and on.
func benchHandlers(b *testing.B, path string) {
	for _, bc := range []struct {
		name     string
		batching runtime.Batching
	}{
		{"batching=off", runtime.Batching{}},
		{"batching=on", runtime.Batching{MaxBatchSize: 32, BatchInterval: runtime.Duration(time.Millisecond)}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchHandler(b, bc.batching, path) })
	}
}

func benchHandler(b *testing.B, batching runtime.Batching, path string) {
	model, err := filepath.Abs(filepath.Join("..", "samples", "iris", "model", "iris.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 150)
	for i := range bodies {
		bodies[i] = irisRequest(i).Body
	}
	rt, err := runtime.New(onnx.New(), runtime.Config{Name: "iris",
		Predictor: runtime.PredictorConfig{Type: "onnx", Model: model},
		Limits:    runtime.Limits{MaxConcurrency: 64, MaxQueue: 1024}, Batching: batching},
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
	target, err := url.Parse(path)
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		var body bytes.Reader
		for i := 0; pb.Next(); i++ {
			// What net/http's server makes for each request, no more
			// (httptest.NewRequest allocates a 4 KiB reader each time).
			body.Reset(bodies[i%len(bodies)])
			req := &http.Request{Method: http.MethodPost, URL: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(&body),
				ContentLength: int64(body.Len()), Host: "localhost", RemoteAddr: "127.0.0.1:1", RequestURI: path}
			// A request's context is cancellable, as net/http's is.
			ctx, cancel := context.WithCancel(context.Background())
			w := &discardWriter{header: http.Header{}}
			h.ServeHTTP(w, req.WithContext(ctx))
			cancel()
			if w.status != http.StatusOK {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
