package packager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/modelfetch"
	_ "github.com/cortexfn/cortex/runtime/modelfetch/oci"
)

// TestBuildModelReferences builds a function whose models are named by
// reference: none is embedded, the artifact lists them, and cortex.json
// carries each reference and digest as the spec writes them.
func TestBuildModelReferences(t *testing.T) {
	dir := t.TempDir()
	const digest = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	y := "name: refs\npredictor:\n  type: onnx\n  models:\n" +
		"    - {name: a, path: \"oci://registry.example.com/models/a:1\"}\n" +
		"    - {name: b, path: \"https://example.com/b.onnx\", sha256: " + digest + "}\n" +
		"    - {name: c, path: models/c.onnx}\n"
	os.MkdirAll(filepath.Join(dir, "models"), 0o755)
	iris, err := os.ReadFile("../samples/iris/model/iris.onnx")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "models", "c.onnx"), iris, 0o644)
	os.WriteFile(filepath.Join(dir, "cortex.yaml"), []byte(y), 0o644)

	a, err := packager.Build(context.Background(), dir, packager.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(a.Models) != 1 || a.Models[0].Path != "models/c.onnx" {
		t.Errorf("embedded models %+v, want models/c.onnx alone", a.Models)
	}
	want := []artifact.ModelRef{{Name: "a", Ref: "oci://registry.example.com/models/a:1"}, {Name: "b", Ref: "https://example.com/b.onnx", SHA256: digest}}
	if len(a.ModelRefs) != 2 || a.ModelRefs[0] != want[0] || a.ModelRefs[1] != want[1] {
		t.Errorf("ModelRefs %+v, want %+v", a.ModelRefs, want)
	}
	var c runtime.Config
	if err := json.Unmarshal(a.Config.Data, &c); err != nil {
		t.Fatal(err)
	}
	if m := c.Predictor.Models; len(m) != 3 || m[0].Path != want[0].Ref || m[1].Path != want[1].Ref || m[1].SHA256 != digest || m[2].Path != "models/c.onnx" {
		t.Errorf("cortex.json models %+v", m)
	}
	if strings.Contains(string(a.Config.Data), "oci:/registry") {
		t.Error("cortex.json holds a reference cleaned into a path")
	}
}

// TestPushModelThenFetch: what cortex package --push-model pushes is what
// the function's runtime fetches by the reference the push reports: the
// model and its external data, side by side, with the bytes of the
// function's own files.
func TestPushModelThenFetch(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := externalDataFunction(t, "weights.data")
	r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLayout}, PushModel: "oci://" + host + "/acme/iris-model:v1"})
	if r.Model == nil {
		t.Fatal("no Result.Model after --push-model")
	}
	c, err := modelfetch.New(modelfetch.WithDir(t.TempDir()), modelfetch.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Fetch(context.Background(), r.Model.Ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "iris.onnx" {
		t.Errorf("fetched %s, want the model's iris.onnx", p)
	}
	for _, f := range []string{"iris.onnx", "weights.data"} {
		got, err := os.ReadFile(filepath.Join(filepath.Dir(p), f))
		want, _ := os.ReadFile(filepath.Join(dir, "model", f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: fetched %d bytes (%v), the function's has %d", f, len(got), err, len(want))
		}
	}
}
