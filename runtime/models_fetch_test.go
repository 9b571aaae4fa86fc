package runtime_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/internal/testutil/ocitest"
	"github.com/cortexfn/cortex/runtime"
	_ "github.com/cortexfn/cortex/runtime/modelfetch/oci" // as a generated main imports it
)

// pushModel pushes an image holding files under /models to an in-process
// registry and returns its oci:// reference.
func pushModel(t *testing.T, files map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	paths := make(map[string][]byte, len(files))
	for n, c := range files {
		paths["models/"+n] = []byte(c)
	}
	img := ocitest.Image(t, paths)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/models/m:1"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return "oci://" + ref
}

// initRecorder records the Config its Init is given.
type initRecorder struct{ cfg functions.Config }

func (p *initRecorder) Init(_ context.Context, cfg functions.Config) error { p.cfg = cfg; return nil }
func (p *initRecorder) Predict(context.Context, *functions.Request) (*functions.Response, error) {
	return &functions.Response{}, nil
}

// TestStartFetchesModels: Start fetches a referenced predictor.model into
// the cache before Init, which is given the fetched file; a referenced
// model of predictor.models is linked at runtime.ModelPath, where the
// generated main told the repository to look.
func TestStartFetchesModels(t *testing.T) {
	ref := pushModel(t, map[string]string{"model.onnx": "graph", "model.onnx.data": "weights"})
	cache := t.TempDir()
	t.Setenv("CORTEX_MODEL_CACHE", cache)
	p := &initRecorder{}
	cfg := runtime.Config{Name: "fetch", Predictor: runtime.PredictorConfig{Type: "go", Model: ref,
		Models: []runtime.ModelConfig{{Name: "m", Path: ref}}}}
	rt, err := runtime.New(p, cfg, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.cfg.Model, cache+string(filepath.Separator)) || filepath.Base(p.cfg.Model) != "model.onnx" {
		t.Errorf("Init's Model = %s, want model.onnx in the cache %s", p.cfg.Model, cache)
	}
	if b, err := os.ReadFile(filepath.Join(runtime.ModelPath(ref), "model.onnx.data")); err != nil || string(b) != "weights" {
		t.Errorf("ModelPath(%s) does not lead to the fetched model: %q, %v", ref, b, err)
	}
	if !rt.Ready() {
		t.Error("not ready after the fetch and Init")
	}
	// The links go with the process's runtime; the models stay cached.
	if err := rt.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Dir(runtime.ModelPath(ref))); !os.IsNotExist(err) {
		t.Errorf("the model links' directory is still there after Shutdown: %v", err)
	}
	if _, err := os.Stat(p.cfg.Model); err != nil {
		t.Errorf("the fetched model went with the links: %v", err)
	}
}

// TestStartFailsOnUnfetchableModel: a model that cannot be fetched fails
// the start as an Init error does, naming the reference; the runtime
// stays not ready and Init is never called.
func TestStartFailsOnUnfetchableModel(t *testing.T) {
	ref := pushModel(t, map[string]string{"model.onnx": "graph"})
	missing := strings.Replace(ref, ":1", ":2", 1)
	t.Setenv("CORTEX_MODEL_CACHE", t.TempDir())
	p := &initRecorder{}
	rt, err := runtime.New(p, runtime.Config{Name: "fetch", Predictor: runtime.PredictorConfig{Type: "onnx", Model: missing}}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	err = rt.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), `initialising function "fetch"`) {
		t.Fatalf("Start = %v, want an init error naming %s", err, missing)
	}
	if rt.Ready() || rt.InitError() == nil || p.cfg.Name != "" {
		t.Errorf("ready %v, InitError %v, Init called %v: want not ready, the error kept, no Init", rt.Ready(), rt.InitError(), p.cfg.Name != "")
	}
}
