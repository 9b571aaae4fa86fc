package packager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zip"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/onnxruntime"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime/onnx"
)

const iris = "../samples/iris"

// sharedDirs are directories made once per test binary for results several
// tests share (armIris); TestMain removes them when the tests end.
var sharedDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range sharedDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// pkg packages dir. Under the race detector it ships a small stand-in for
// ONNX Runtime: compressing, zipping, hashing and pushing its 46 MB through
// race-instrumented code took minutes per test, and the race detector
// finds the packager's races as well on 1 MB. Without -race (make test's
// test-fullsize) every test ships the real library, and the tests that
// run the image (e2e_test.go) are built only then.
func pkg(t *testing.T, dir string, o packager.Options) *packager.Result {
	t.Helper()
	if o.Out == "" {
		o.Out = filepath.Join(t.TempDir(), "dist")
	}
	o.BuildOptions = raceSized(t, o.BuildOptions)
	r, err := packager.Package(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// raceSized gives o the small stand-in for ONNX Runtime under the race
// detector (see pkg), unless o names a library itself.
func raceSized(t *testing.T, o packager.BuildOptions) packager.BuildOptions {
	t.Helper()
	if raceEnabled && o.ONNXRuntime == "" {
		o.ONNXRuntime = smallONNXRuntime(t)
	}
	return o
}

// smallONNXRuntime writes the race runs' stand-in for libonnxruntime.so.1:
// 1 MiB that compresses about as well as the real library, the same bytes
// every time (the reproducibility tests compare two packages).
func smallONNXRuntime(t *testing.T) string {
	t.Helper()
	b := make([]byte, 1<<20)
	x := uint32(1)
	for i := range b {
		x = x*1664525 + 1013904223
		if i%4 == 0 {
			b[i] = byte(x >> 24)
		} else {
			b[i] = byte(i / 4096)
		}
	}
	p := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// copyDir copies a sample into a temporary directory the test may change,
// without the dist/ an earlier `cortex package` (or the demo) left in it.
// Copies of a sample in different directories build the same binary
// (packager/build names a function's build for its files, not its path),
// so the cache has it after the first test: under -race, compressing a
// fresh 20 MB binary took 5 to 20 s a test.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dst, "dist")); err != nil {
		t.Fatal(err)
	}
	return dst
}

func editSpec(t *testing.T, dir, old, new string) {
	t.Helper()
	p := filepath.Join(dir, spec.FileName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q", p, old)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func layer(t *testing.T, r *packager.Result, name string) oci.LayerInfo {
	t.Helper()
	for _, l := range r.Image.Layers {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no %s layer", name)
	return oci.LayerInfo{}
}

func TestONNXRuntimeVersionMatchesRuntime(t *testing.T) {
	if packager.ONNXRuntimeVersion != onnx.Version {
		t.Errorf("packager ships ONNX Runtime %s, runtime/onnx is built for %s", packager.ONNXRuntimeVersion, onnx.Version)
	}
	if onnxruntime.LibraryEnv != onnx.LibraryEnv || onnxruntime.LibraryName != onnx.LibraryName {
		t.Errorf("the CLI names the library %s via $%s, runtime/onnx %s via $%s", onnxruntime.LibraryName, onnxruntime.LibraryEnv, onnx.LibraryName, onnx.LibraryEnv)
	}
}

// TestBadInput: each a clear error, and no dist/ (not even a partial one)
// left behind.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (out string)
		want  string
		is    error
	}{
		{
			name: "missing model",
			setup: func(t *testing.T, dir string) string {
				os.Remove(filepath.Join(dir, "model", "iris.onnx"))
				return ""
			},
			want: "model/iris.onnx does not exist",
		},
		{
			name: "model path escapes the function directory",
			setup: func(t *testing.T, dir string) string {
				editSpec(t, dir, "model: model/iris.onnx", "model: ../iris.onnx")
				return ""
			},
			want: "outside the function directory",
		},
		{
			name: "model is a symlink out of the tree",
			setup: func(t *testing.T, dir string) string {
				outside := filepath.Join(t.TempDir(), "iris.onnx")
				os.Rename(filepath.Join(dir, "model", "iris.onnx"), outside)
				os.Symlink(outside, filepath.Join(dir, "model", "iris.onnx"))
				return ""
			},
			want: "outside the function directory",
		},
		{
			name: "a symlink out of the tree inside a model directory",
			setup: func(t *testing.T, dir string) string {
				editSpec(t, dir, "type: onnx\n  model: model/iris.onnx", "type: go\n  path: ./predictor\n  model: model")
				os.MkdirAll(filepath.Join(dir, "predictor"), 0o755)
				os.WriteFile(filepath.Join(dir, "predictor", "p.go"), []byte("package predictor\n"), 0o644)
				secret := filepath.Join(t.TempDir(), "secret")
				os.WriteFile(secret, []byte("key"), 0o600)
				os.Symlink(secret, filepath.Join(dir, "model", "leak.bin"))
				return ""
			},
			want: "model/leak.bin is a symbolic link to",
			is:   packager.ErrOutsideDir,
		},
		{
			name: "unwritable output directory",
			setup: func(t *testing.T, dir string) string {
				file := filepath.Join(t.TempDir(), "a-file")
				os.WriteFile(file, nil, 0o644)
				return filepath.Join(file, "dist") // a directory under a regular file: not even root can create it
			},
			want: "output directory",
			is:   fs.ErrExist,
		},
		{
			name: "output directory holds other files",
			setup: func(t *testing.T, dir string) string {
				out := filepath.Join(t.TempDir(), "mine")
				os.MkdirAll(out, 0o755)
				os.WriteFile(filepath.Join(out, "notes.txt"), []byte("keep me"), 0o644)
				return out
			},
			want: "was not written by cortex package",
			is:   packager.ErrOutNotDist,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, iris)
			out := tt.setup(t, dir)
			before := listing(t, out)
			if out == "" {
				out = filepath.Join(dir, "dist")
			}
			_, err := packager.Package(context.Background(), dir, packager.Options{Out: out})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) && !strings.Contains(err.Error(), "not a directory") {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if after := listing(t, out); after != before {
				t.Errorf("the output directory changed:\nbefore %s\nafter  %s", before, after)
			}
			if parent := filepath.Dir(out); parent != "" {
				entries, _ := os.ReadDir(parent)
				for _, e := range entries {
					if strings.Contains(e.Name(), ".tmp-") {
						t.Errorf("a temporary directory %s was left behind", e.Name())
					}
				}
			}
		})
	}
}

// listing describes a directory tree ("" when it does not exist).
func listing(t *testing.T, dir string) string {
	if dir == "" {
		return ""
	}
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			b.WriteString(p + " ")
		}
		return nil
	})
	return b.String()
}

// TestFailureKeepsPreviousDist: a failed package leaves the last good
// dist/ as it was.
func TestFailureKeepsPreviousDist(t *testing.T) {
	dir := copyDir(t, iris)
	r := pkg(t, dir, packager.Options{Out: filepath.Join(dir, "dist")})
	before, _ := os.ReadFile(filepath.Join(r.Out, "summary.json"))
	os.Remove(filepath.Join(dir, "model", "iris.onnx"))
	if _, err := packager.Package(context.Background(), dir, packager.Options{}); err == nil {
		t.Fatal("no error for a missing model")
	}
	after, _ := os.ReadFile(filepath.Join(r.Out, "summary.json"))
	if !bytes.Equal(before, after) || len(before) == 0 {
		t.Error("the previous dist/ changed")
	}
	if _, err := os.Stat(filepath.Join(r.Out, "oci", "index.json")); err != nil {
		t.Error(err)
	}
}

func TestGPUWithoutCUDAWarns(t *testing.T) {
	dir := copyDir(t, iris)
	editSpec(t, dir, `mem: 256Mi}`, `mem: 256Mi, gpu: 1}`)
	r := pkg(t, dir, packager.Options{})
	var warned bool
	for _, w := range r.Warnings {
		if strings.Contains(w, "will run on the CPU") && strings.Contains(w, "--base") && strings.Contains(w, "libonnxruntime_providers_cuda.so") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no CPU-fallback warning in %q", r.Warnings)
	}
	m, _ := os.ReadFile(r.Knative.Manifest)
	for _, want := range []string{"nvidia.com/gpu: \"1\"", "nvidia.com/gpu.present: \"true\"", "effect: NoSchedule", "serving.knative.dev/progress-deadline"} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("knative.yaml has no %q", want)
		}
	}
	if len(r.Knative.Features) != 2 {
		t.Errorf("features %v, want nodeselector and tolerations", r.Knative.Features)
	}
}

func TestLambdaZipContents(t *testing.T) {
	r := pkg(t, iris, packager.Options{})
	if r.Lambda == nil {
		t.Fatalf("no Lambda zip: %v", r.Warnings)
	}
	zr, err := zip.OpenReader(r.Lambda.Zip)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := map[string]fs.FileMode{}
	for _, f := range zr.File {
		got[f.Name] = f.Mode()
		if f.Name == "cortex.json" {
			rc, _ := f.Open()
			var cfg map[string]any
			json.NewDecoder(rc).Decode(&cfg)
			rc.Close()
			if _, ok := cfg["dir"]; ok {
				t.Errorf("cortex.json names a build-machine dir: %v", cfg["dir"])
			}
			if p := cfg["predictor"].(map[string]any)["model"]; p != "model/iris.onnx" {
				t.Errorf("cortex.json model %v", p)
			}
		}
	}
	if got["bootstrap"] != 0o755 {
		t.Errorf("bootstrap mode %v, want 0755", got["bootstrap"])
	}
	for _, want := range []string{"cortex.json", "lib/libonnxruntime.so.1", "model/iris.onnx"} {
		if _, ok := got[want]; !ok {
			t.Errorf("zip has no %s: %v", want, got)
		}
	}
	tmpl, _ := os.ReadFile(r.Lambda.Template)
	if !bytes.Contains(tmpl, []byte("CodeUri: \"lambda.zip\"")) || !bytes.Contains(tmpl, []byte("AuthType: AWS_IAM")) {
		t.Errorf("template.yaml:\n%s", tmpl)
	}
}

// blobCounter counts blob uploads to a registry (each ends with a PUT
// carrying ?digest=).
type blobCounter struct {
	h       http.Handler
	uploads atomic.Int64
	last    atomic.Value
}

func (c *blobCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
		c.uploads.Add(1)
		c.last.Store(r.URL.Query().Get("digest"))
	}
	c.h.ServeHTTP(w, r)
}

func TestPush(t *testing.T) {
	reg := &blobCounter{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/acme"

	r := pkg(t, iris, packager.Options{Registry: repo, Tag: "v1"})
	want := repo + "/iris@" + r.Image.Digest
	if r.Pushed != want {
		t.Errorf("pushed %q, want %q", r.Pushed, want)
	}
	if m, _ := os.ReadFile(r.Knative.Manifest); !bytes.Contains(m, []byte("image: "+want)) {
		t.Errorf("knative.yaml does not name %s", want)
	}
	first := reg.uploads.Load()
	if want := int64(len(r.Image.Layers) + 1 + 2); first != want {
		t.Errorf("first push uploaded %d blobs, want %d (layers and config, the SBOM and its empty config)", first, want)
	}
	ref, err := name.ParseReference(r.Pushed)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != r.Image.Digest {
		t.Errorf("pulled %s, pushed %s", d, r.Image.Digest)
	}
	tag, err := name.ParseReference(repo + "/iris:v1")
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := tagged.Digest(); d.String() != r.Image.Digest {
		t.Errorf("tag v1 is %s, want %s", d, r.Image.Digest)
	}

	// Again, as after a change that touches nothing: no blob goes up,
	// the model's least of all.
	pkg(t, iris, packager.Options{Registry: repo, Tag: "v2"})
	if n := reg.uploads.Load() - first; n != 0 {
		t.Errorf("second push uploaded %d blobs (last %v), want 0", n, reg.last.Load())
	}
}
