package onnx_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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

func repoLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

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
