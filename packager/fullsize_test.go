//go:build !race

// Built only without -race, as e2e_test.go: these tests vary the inputs or
// the options of the pipeline that the race run already drives through
// each of its concurrent paths (see race_test.go), and each packages
// something the race run's caches do not hold: an empty cache
// (TestWriteUsesTheDefaultCache), --no-cache (TestReproducible,
// TestSwapAfterCheckShipsWhatWasChecked, TestModelReadOnceForLayerAndSBOM
// in sbomdigest_test.go), a binary of their own (TestCodeChangeKeepsModelLayer,
// TestWasmStageShipped, TestPushModelMulti) or a second codec (TestZstd).
// Under -race each cost 10 to 30 s of race-instrumented compression of
// the function binary, single-goroutine code in which the race detector
// finds nothing. make test runs them in test-fullsize (go test ./packager/
// without -race), on the real ONNX Runtime.

package packager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zip"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/oci"
)

// TestReproducible packages iris twice, from two directories, the second
// time without any cache (binary rebuilt, every layer compressed again):
// the same manifest digest, the same zip bytes, the same manifests.
func TestReproducible(t *testing.T) {
	// Two copies in two directories, as a user's function outside this
	// repository: where a function is checked out changes nothing in what
	// it packages to.
	a := pkg(t, copyDir(t, iris), packager.Options{})
	b := pkg(t, copyDir(t, iris), packager.Options{BuildOptions: packager.BuildOptions{NoCache: true, CacheDir: t.TempDir()}})
	if a.Image.Digest != b.Image.Digest {
		t.Errorf("manifest digests differ: %s, %s", a.Image.Digest, b.Image.Digest)
	}
	for _, f := range []string{"lambda.zip", "knative.yaml", "template.yaml", "image.tar", "lambda.cdx.json", "image.cdx.json"} {
		x, _ := os.ReadFile(filepath.Join(a.Out, f))
		y, _ := os.ReadFile(filepath.Join(b.Out, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds (%d and %d bytes)", f, len(x), len(y))
		}
	}
	if a.Lambda == nil || a.Lambda.SHA256 != b.Lambda.SHA256 {
		t.Errorf("lambda zips: %+v, %+v", a.Lambda, b.Lambda)
	}
	// The layers, in order, as the package documentation promises.
	var names []string
	for _, l := range a.Image.Layers {
		names = append(names, l.Name)
	}
	if got, want := strings.Join(names, ","), "base 1,runtime,model,binary,config"; got != want {
		t.Errorf("layers %s, want %s", got, want)
	}
}

// TestCodeChangeKeepsModelLayer changes a Go predictor's code: the model
// layer's digest stays, the binary's moves.
func TestCodeChangeKeepsModelLayer(t *testing.T) {
	dir := copyDir(t, "../samples/echo-go")
	if err := os.MkdirAll(filepath.Join(dir, "model"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model", "weights.bin"), bytes.Repeat([]byte{1, 2, 3, 4}, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	editSpec(t, dir, "  path: ./predictor", "  path: ./predictor\n  model: model")
	a := pkg(t, dir, packager.Options{})

	src := filepath.Join(dir, "predictor", "predictor.go")
	b, _ := os.ReadFile(src)
	b = append(b, []byte("\nfunc init() { println(\"echo-go v2\") }\n")...)
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c := pkg(t, dir, packager.Options{})
	if a.Image.Digest == c.Image.Digest {
		t.Fatal("a code change did not change the image")
	}
	if layer(t, a, "model").Digest != layer(t, c, "model").Digest {
		t.Errorf("the model layer changed with the code: %s -> %s", layer(t, a, "model").Digest, layer(t, c, "model").Digest)
	}
	if layer(t, a, "binary").Digest == layer(t, c, "binary").Digest {
		t.Error("the binary layer did not change")
	}
	if a.Image.Base.Ref != "builtin" {
		t.Errorf("a pure-Go function got base %q, want the static builtin", a.Image.Base.Ref)
	}
	for _, l := range a.Image.Layers {
		if l.Name == "runtime" {
			t.Error("a pure-Go function ships ONNX Runtime")
		}
	}
}

func TestZstd(t *testing.T) {
	r := pkg(t, iris, packager.Options{Compression: oci.Zstd})
	for _, l := range r.Image.Layers {
		if l.MediaType != types.OCILayerZStd {
			t.Errorf("layer %s: %s", l.Name, l.MediaType)
		}
	}
	g := pkg(t, iris, packager.Options{})
	if layer(t, r, "model").DiffID != layer(t, g, "model").DiffID {
		t.Error("the model's diffID depends on the compression")
	}
	if r.Lambda == nil || r.Lambda.SHA256 != g.Lambda.SHA256 {
		t.Error("the Lambda zip depends on the image compression")
	}
}

// TestWasmStageShipped: a .wasm stage goes into its own layer and the zip,
// and the shipped config names it relative to itself.
func TestWasmStageShipped(t *testing.T) {
	dir := copyDir(t, "../samples/echo-go")
	os.MkdirAll(filepath.Join(dir, "wasm"), 0o755)
	// Only shipped here, never run: any bytes do.
	if err := os.WriteFile(filepath.Join(dir, "wasm", "pre.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	editSpec(t, dir, "compute:", "pre: wasm/pre.wasm\ncompute:")
	r := pkg(t, dir, packager.Options{})
	layer(t, r, "wasm")
	zr, err := zip.OpenReader(r.Lambda.Zip)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	found := false
	for _, f := range zr.File {
		if f.Name == "wasm/pre.wasm" {
			found = true
		}
		if f.Name == "cortex.json" {
			rc, _ := f.Open()
			var cfg struct{ Pre string }
			json.NewDecoder(rc).Decode(&cfg)
			rc.Close()
			if cfg.Pre != "wasm/pre.wasm" {
				t.Errorf("cortex.json pre %q", cfg.Pre)
			}
		}
	}
	if !found {
		t.Error("the zip has no wasm/pre.wasm")
	}
	var sum bytes.Buffer
	if err := r.WriteSummary(&sum); err != nil || !strings.Contains(sum.String(), r.Image.Ref) {
		t.Errorf("summary %q, %v", sum.String(), err)
	}
	j, err := json.Marshal(r)
	if err != nil || !bytes.Contains(j, []byte(`"digest":"`+r.Image.Digest)) {
		t.Errorf("JSON %s, %v", j, err)
	}
}

// The packager checks a path, then writes it later: a file swapped for a
// symbolic link to an outside file in between must not ship the outside
// file. Each file is opened once, when it is checked, and the outputs
// write what was opened.
func TestSwapAfterCheckShipsWhatWasChecked(t *testing.T) {
	dir := copyDir(t, iris)
	model := filepath.Join(dir, "model", "iris.onnx")
	want, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	a, err := packager.Build(context.Background(), dir, raceSized(t, packager.BuildOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	before, err := packager.Write(context.Background(), a, packager.Options{Out: filepath.Join(t.TempDir(), "dist"), Outputs: []packager.Output{packager.OutputLayout}})
	if err != nil {
		t.Fatal(err)
	}
	// The swap, between the check and the write.
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("outside secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(model); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, model); err != nil {
		t.Fatal(err)
	}
	// No cache: every layer and zip entry is read again.
	r, err := packager.Write(context.Background(), a, packager.Options{Out: filepath.Join(t.TempDir(), "dist"), Outputs: []packager.Output{packager.OutputLambda, packager.OutputLayout},
		BuildOptions: packager.BuildOptions{NoCache: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got := zipEntry(t, r.Lambda.Zip, "model/iris.onnx"); !bytes.Equal(got, want) {
		t.Errorf("the zip's model is %q, want the model as it was checked (%d bytes)", got[:min(len(got), 40)], len(want))
	}
	if got, want := layer(t, r, "model").Digest, layer(t, before, "model").Digest; got != want {
		t.Errorf("the model layer is %s after the swap, %s before", got, want)
	}
}

// Write uses the cache Build used when the options name none (the CLI
// never does): an unchanged function's layers are not compressed again.
func TestWriteUsesTheDefaultCache(t *testing.T) {
	t.Setenv("CORTEX_CACHE", t.TempDir())
	o := packager.Options{Outputs: []packager.Output{packager.OutputLayout}}
	pkg(t, iris, o)
	r := pkg(t, iris, o)
	for _, l := range r.Image.Layers {
		if !strings.HasPrefix(l.Name, "base") && !l.Cached { // base layers report no Cached
			t.Errorf("layer %s was compressed again on an unchanged second package", l.Name)
		}
	}
}

// A multi-model function's models go under models/NAME/, as the models
// directory holds them.
func TestPushModelMulti(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := copyDir(t, "../samples/iris-multi")
	r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLambda}, PushModel: host + "/acme/multi-models:v1"})
	files, _ := pulledModels(t, r.Model.Ref)
	var want []string
	filepath.WalkDir(filepath.Join(dir, "models"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			want = append(want, filepath.ToSlash(rel))
			if got := files[filepath.ToSlash(rel)]; got != fileSHA256(t, p) {
				t.Errorf("%s in the model image: sha256 %q, want %s", rel, got, fileSHA256(t, p))
			}
		}
		return nil
	})
	if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, want) {
		t.Errorf("model image files %v, want %v", got, want)
	}
}
