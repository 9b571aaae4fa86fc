package onnx_test

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// TestRepositoryLRU: with a cache of one, using a model unloads the other,
// and alternating requests (which evict a session while another request
// may still run on it) all succeed.
func TestRepositoryLRU(t *testing.T) {
	dir := repoTree(t, "a/m.onnx", "b/m.onnx", "c/1/m.onnx")
	p := onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithCacheSize(1), onnx.WithPollInterval(-1))
	srv, _ := serveRepo(t, dir, p)

	if got, want := p.Loaded(), []string{"a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded after Init: got %v, want %v (the first model, up to the cache size)", got, want)
	}
	for _, step := range []struct{ model, loaded string }{{"b", "b"}, {"a", "a"}, {"c", "c/1"}, {"c", "c/1"}, {"b", "b"}} {
		if got := repoCall(t, "POST", srv.URL+"/v2/models/"+step.model+"/infer", repoRow); got.status != 200 {
			t.Fatalf("model %s: got %d %s", step.model, got.status, got.raw)
		}
		if got := p.Loaded(); !reflect.DeepEqual(got, []string{step.loaded}) {
			t.Errorf("after a request to %s: loaded %v, want [%s]", step.model, got, step.loaded)
		}
	}

	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 15 {
				model := []string{"a", "b", "c"}[(i+j)%3]
				if got := repoCall(t, "POST", srv.URL+"/predict?model="+model, repoRow); got.status != 200 {
					failed.Add(1)
					t.Errorf("model %s under churn: got %d %s", model, got.status, got.raw)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(p.Loaded()); n != 1 {
		t.Errorf("after the churn %d models are cached, want 1", n)
	}
	if failed.Load() > 0 {
		t.Errorf("%d requests failed while models were evicted", failed.Load())
	}
}

func BenchmarkRepositoryPredict(b *testing.B) {
	dir := repoTree(b, "a/1/m.onnx", "b/m.onnx")
	p := onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(-1))
	if err := p.Init(context.Background(), functions.Config{Dir: dir}); err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := &functions.Request{Model: "a", Body: []byte(repoRow)}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Predict(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
