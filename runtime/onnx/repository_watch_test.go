package onnx_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// TestRepositoryHotReload adds a version and then removes the old one
// under concurrent load: no request fails, and the new version is served
// without a restart.
func TestRepositoryHotReload(t *testing.T) {
	dir := repoTree(t, "iris/1/model.onnx")
	p := onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(20*time.Millisecond))
	srv, _ := serveRepo(t, dir, p)

	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got := repoCall(t, "POST", srv.URL+"/v2/models/iris/infer", repoRow); got.status == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					t.Errorf("during the reload: got %d %s", got.status, got.raw)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)

	repoPlace(t, repoIris(t), dir, "models/iris/2/model.onnx")
	repoWait(t, "version 2", func() bool { return slices.Equal(p.Versions("iris"), []string{"1", "2"}) })
	if got, want := p.Loaded(), []string{"iris/1", "iris/2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("loaded after adding version 2: got %v, want %v", got, want)
	}
	time.Sleep(100 * time.Millisecond)

	if err := os.RemoveAll(filepath.Join(dir, "models", "iris", "1")); err != nil {
		t.Fatal(err)
	}
	repoWait(t, "version 1 to go", func() bool { return slices.Equal(p.Versions("iris"), []string{"2"}) })
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()

	if failed.Load() > 0 || ok.Load() == 0 {
		t.Errorf("%d requests succeeded and %d failed during the reload; want none failed", ok.Load(), failed.Load())
	}
	t.Logf("%d requests during the reload, none failed", ok.Load())
	if got := repoCall(t, "POST", srv.URL+"/v2/models/iris/versions/2/infer", repoRow); got.status != 200 {
		t.Errorf("version 2: got %d %s", got.status, got.raw)
	}
	if got := repoCall(t, "POST", srv.URL+"/v2/models/iris/versions/1/infer", repoRow); got.status != 404 {
		t.Errorf("removed version 1: got %d %s, want 404", got.status, got.raw)
	}

	// A new model directory appears.
	repoPlace(t, repoIris(t), dir, "models/setosa/model.onnx")
	repoWait(t, "model setosa", func() bool { return slices.Contains(p.Models(), "setosa") })
	if got := repoCall(t, "POST", srv.URL+"/predict?model=setosa", repoRow); got.status != 200 {
		t.Errorf("new model: got %d %s", got.status, got.raw)
	}
}

// TestRepositoryChangedFile replaces a model file in place: the new model
// is served; a file that does not load is not taken up, and the old model
// keeps serving.
func TestRepositoryChangedFile(t *testing.T) {
	dir := repoTree(t, "m/model.onnx", "n/1/model.onnx")
	p := onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(20*time.Millisecond))
	if err := p.Init(context.Background(), functions.Config{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	input := func(name string) string {
		md, err := p.DescribeModel(ctx, name, "")
		if err != nil {
			t.Fatal(err)
		}
		return md.Inputs[0].Name
	}
	if got := input("m"); got != "input" {
		t.Fatalf("iris input: got %q", got)
	}
	types, err := filepath.Abs(filepath.Join("testdata", "types.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	repoPlace(t, types, dir, "models/m/model.onnx")
	repoWait(t, "the changed model", func() bool { return input("m") != "input" })

	// A broken new version is not taken up; version 1 keeps serving.
	if err := os.MkdirAll(filepath.Join(dir, "models", "n", "2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "models", "n", "2", "model.onnx"), []byte("half a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // ten polls
	if got := p.Versions("n"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("versions after a broken version 2: got %v, want [1]", got)
	}
	if _, err := p.Predict(ctx, &functions.Request{Model: "n", Body: []byte(repoRow)}); err != nil {
		t.Errorf("version 1 after a broken version 2: %v", err)
	}
	// Fixed, it is taken up.
	repoPlace(t, repoIris(t), dir, "models/n/2/model.onnx")
	repoWait(t, "the fixed version 2", func() bool { return slices.Equal(p.Versions("n"), []string{"1", "2"}) })
}
