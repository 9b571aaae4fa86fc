package onnx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	adhttp "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// The repository tests build model trees in t.TempDir() from copies of the
// real iris model (and the types test model where a different model is
// needed), and serve them through the runtime and the HTTP carrier.

const repoRow = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`

// place copies src to dir/rel, through a temporary file and a rename, as a
// deployment should.
func repoPlace(t testing.TB, src, dir, rel string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func repoIris(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(irisDir, "model", "iris.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tree makes a function directory with models/<rel> for each rel, each a
// copy of the iris model.
func repoTree(t testing.TB, rels ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, rel := range rels {
		repoPlace(t, repoIris(t), dir, filepath.Join("models", rel))
	}
	return dir
}

// serve starts the repository behind the runtime and the HTTP carrier.
func serveRepo(t testing.TB, dir string, p *onnx.Repository) (*httptest.Server, *runtime.Runtime) {
	t.Helper()
	rt, err := runtime.New(p, runtime.Config{Name: "multi", Dir: dir}, runtime.WithLogger(repoLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	srv := httptest.NewServer(adhttp.New(rt, adhttp.WithoutCompression()))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv, rt
}

type repoAnswer struct {
	status int
	body   map[string]any
	raw    string
}

func repoCall(t testing.TB, method, url, body string) repoAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := repoAnswer{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func TestRepositoryRoutes(t *testing.T) {
	dir := repoTree(t, "iris/1/model.onnx", "iris/2/model.onnx", "setosa/model.onnx")
	srv, rt := serveRepo(t, dir, onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(-1)))

	if got, want := rt.Models(), []string{"iris", "setosa"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Models: got %v, want %v", got, want)
	}
	tests := []struct {
		name       string
		method     string
		path, body string
		status     int
		want       string // substring of the body
	}{
		{"query parameter", "POST", "/predict?model=setosa", repoRow, 200, `"model_name":"setosa"`},
		{"query parameter, other model", "POST", "/?model=iris", repoRow, 200, `"model_name":"iris"`},
		{"OIP path", "POST", "/v2/models/iris/infer", repoRow, 200, `"model_name":"iris"`},
		{"OIP path with a version", "POST", "/v2/models/iris/versions/1/infer", repoRow, 200, `"model_name":"iris"`},
		{"KServe V1 path", "POST", "/v1/models/setosa:predict", `{"instances":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}`, 200, `{"predictions":[0,2]}`},
		{"unknown model, OIP", "POST", "/v2/models/rose/infer", repoRow, 404, `model \"rose\" not found; this function serves \"iris\", \"setosa\"`},
		{"unknown model, query", "POST", "/predict?model=rose", repoRow, 404, `this function serves \"iris\", \"setosa\"`},
		{"unknown model, V1", "POST", "/v1/models/rose:predict", `{"instances":[[1,2,3,4]]}`, 404, `this function serves \"iris\", \"setosa\"`},
		{"unknown version", "POST", "/v2/models/iris/versions/7/infer", repoRow, 404, `model \"iris\" has no version \"7\"; its versions are \"1\", \"2\"`},
		{"version of an unversioned model", "POST", "/v2/models/setosa/versions/1/infer", repoRow, 404, `model \"setosa\" has no versions`},
		{"no model named", "POST", "/predict", repoRow, 400, `this function serves several models; name one with ?model=NAME`},
		{"bad input still a 400", "POST", "/v2/models/iris/infer", `{"inputs":[{"name":"input","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}]}`, 400, `shape`},
		{"metadata", "GET", "/v2/models/iris", "", 200, `"versions":["1","2"]`},
		{"metadata of a version", "GET", "/v2/models/iris/versions/2", "", 200, `"inputs":[{"name":"input","datatype":"FP32","shape":[-1,4]}]`},
		{"metadata of an unknown model", "GET", "/v2/models/rose", "", 404, `this function serves \"iris\", \"setosa\"`},
		{"metadata of an unknown version", "GET", "/v2/models/iris/versions/9", "", 404, `has no version \"9\"`},
		{"model ready", "GET", "/v2/models/setosa/ready", "", 200, `"ready":true`},
		{"V1 status", "GET", "/v1/models/iris", "", 200, `"ready":true`},
		{"V1 status, unknown", "GET", "/v1/models/rose", "", 404, `this function serves \"iris\", \"setosa\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := repoCall(t, tt.method, srv.URL+tt.path, tt.body)
			if got.status != tt.status || !strings.Contains(got.raw, tt.want) {
				t.Errorf("%s %s: got %d %s\nwant %d with %s", tt.method, tt.path, got.status, got.raw, tt.status, tt.want)
			}
		})
	}
}

// TestRepositoryPredictDirect checks the answers of Predict itself, without
// the runtime in front: 404 for an unknown model, a default model for
// requests that name none.
func TestRepositoryPredictDirect(t *testing.T) {
	dir := repoTree(t, "a/m.onnx", "b/m.onnx")
	p := onnx.NewRepository(onnx.WithModel("a", "models/a/m.onnx"), onnx.WithModel("b", "models/b"),
		onnx.WithDefaultModel("b"), onnx.WithPollInterval(-1))
	if err := p.Init(context.Background(), functions.Config{Name: "fn", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	_, err := p.Predict(ctx, &functions.Request{Model: "c", Body: []byte(repoRow)})
	if got := functions.StatusOf(err); got != http.StatusNotFound || !strings.Contains(err.Error(), `serves "a", "b"`) {
		t.Errorf("unknown model: got %d %v, want 404 naming a and b", got, err)
	}
	resp, err := p.Predict(ctx, &functions.Request{Body: []byte(repoRow)})
	if err != nil || !bytes.Contains(resp.Body, []byte(`"model_name":"b"`)) {
		t.Errorf("no model named: got %v %s, want the default model b", err, resp.Body)
	}
}

func TestRepositoryInitErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		opts  []onnx.RepositoryOption
		want  string
	}{
		{"no options", nil, nil, "use WithModel or WithModelsDir"},
		{"both", nil, []onnx.RepositoryOption{onnx.WithModel("a", "a.onnx"), onnx.WithModelsDir("models")}, "not both"},
		{"empty dir", []string{"models/README"}, []onnx.RepositoryOption{onnx.WithModelsDir("models")}, "no models in"},
		{"two files", []string{"models/a/x.onnx", "models/a/y.onnx"}, []onnx.RepositoryOption{onnx.WithModelsDir("models")}, "holds 2 .onnx files"},
		{"mixed layout", []string{"models/a/x.onnx", "models/a/1/y.onnx"}, []onnx.RepositoryOption{onnx.WithModelsDir("models")}, "both .onnx files and version directories"},
		{"unknown default", []string{"models/a/x.onnx"}, []onnx.RepositoryOption{onnx.WithModelsDir("models"), onnx.WithDefaultModel("b")}, `default model "b" is not one of the models: a`},
		{"not a model", []string{"models/a/x.onnx"}, []onnx.RepositoryOption{onnx.WithModelsDir("models")}, `loading model "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(dir, f)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte("not a model"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := onnx.NewRepository(append(tt.opts, onnx.WithPollInterval(-1))...)
			err := p.Init(context.Background(), functions.Config{Dir: dir})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Init: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

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

// waitFor polls cond until it holds or 10s pass.
func repoWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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

func repoLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
