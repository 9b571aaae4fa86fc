package oci_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cortexfn/cortex/internal/testutil/ocitest"
	"github.com/cortexfn/cortex/runtime/modelfetch"
	_ "github.com/cortexfn/cortex/runtime/modelfetch/oci"
)

// countingRegistry is go-containerregistry's registry, in process,
// counting the GETs of blobs and, when tamper names a digest, serving
// other bytes of the same length for it (a registry or a path to it that
// has been tampered with).
type countingRegistry struct {
	*httptest.Server
	blobGets atomic.Int64
	requests atomic.Int64
	tamper   atomic.Value // string: a blob digest
}

func newRegistry(t testing.TB) *countingRegistry {
	t.Helper()
	r := &countingRegistry{}
	r.tamper.Store("")
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			r.blobGets.Add(1)
			if d := r.tamper.Load().(string); d != "" && strings.HasSuffix(req.URL.Path, d) {
				rec := httptest.NewRecorder()
				reg.ServeHTTP(rec, req)
				b := rec.Body.Bytes()
				b[len(b)/2] ^= 0xff
				for k, vs := range rec.Header() {
					w.Header()[k] = vs
				}
				w.WriteHeader(rec.Code)
				w.Write(b)
				return
			}
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials of the machine's
	return r
}

// modelImage is an image whose one layer holds files under models/ and,
// not part of the model, etc/passwd.
func modelImage(t testing.TB, files map[string][]byte) v1.Image {
	t.Helper()
	paths := map[string][]byte{"models/": nil, "etc/passwd": []byte("x")}
	for n, b := range files {
		paths["models/"+n] = b
	}
	return ocitest.Image(t, paths)
}

func push(t testing.TB, r *countingRegistry, repo string, img v1.Image) (tagRef, digestRef string) {
	t.Helper()
	host := strings.TrimPrefix(r.URL, "http://")
	ref, err := name.ParseReference(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return "oci://" + host + "/" + repo, "oci://" + host + "/" + strings.Split(repo, ":")[0] + "@" + d.String()
}

func cache(t testing.TB, dir string) *modelfetch.Cache {
	t.Helper()
	c, err := modelfetch.New(modelfetch.WithDir(dir), modelfetch.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func iris(t testing.TB) []byte {
	b, err := os.ReadFile("../../../samples/iris/model/iris.onnx")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTwoFunctionsFetchOnce: two functions (two caches on one directory,
// as two processes have) name the same model, by tag and by digest; then
// four more start at once. The registry sends the model's layer once.
func TestTwoFunctionsFetchOnce(t *testing.T) {
	r := newRegistry(t)
	model := iris(t)
	tag, byDigest := push(t, r, "models/iris:1", modelImage(t, map[string][]byte{"iris.onnx": model}))
	pushed := r.blobGets.Load()
	dir := t.TempDir()

	p1, err := cache(t, dir).Fetch(context.Background(), tag, "")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p1) != "iris.onnx" {
		t.Errorf("path %s: want the image's one .onnx file", p1)
	}
	if got, _ := os.ReadFile(p1); !bytes.Equal(got, model) {
		t.Error("the fetched model is not the pushed one")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p1), "..", "etc")); err == nil {
		t.Error("a file outside /models was unpacked")
	}
	requests := r.requests.Load()
	p2, err := cache(t, dir).Fetch(context.Background(), byDigest, "")
	if err != nil || p2 != p1 {
		t.Fatalf("second function: %s, %v; want %s", p2, err, p1)
	}
	if r.requests.Load() != requests {
		t.Error("a model named by digest and in the cache was asked of the registry")
	}
	var wg sync.WaitGroup
	for range 4 {
		c := cache(t, dir)
		wg.Go(func() {
			if p, err := c.Fetch(context.Background(), tag, ""); err != nil || p != p1 {
				t.Errorf("concurrent start: %s, %v", p, err)
			}
		})
	}
	wg.Wait()
	if got := r.blobGets.Load() - pushed; got != 1 {
		t.Errorf("%d blob GETs, want 1: the model's layer, once (the image config is not read)", got)
	}
}

// TestConcurrentStartsFetchOnce starts several functions on an empty cache
// at once.
func TestConcurrentStartsFetchOnce(t *testing.T) {
	r := newRegistry(t)
	tag, _ := push(t, r, "models/iris:1", modelImage(t, map[string][]byte{"iris.onnx": iris(t)}))
	pushed := r.blobGets.Load()
	dir := t.TempDir()
	var wg sync.WaitGroup
	for range 6 {
		c := cache(t, dir)
		wg.Go(func() {
			if _, err := c.Fetch(context.Background(), tag, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := r.blobGets.Load() - pushed; got != 1 {
		t.Errorf("%d blob GETs, want 1: the layer, once", got)
	}
}

// TestTamperedLayerFailsClosed: the registry serves other bytes for the
// model's layer. The fetch fails naming the reference and both digests,
// and the cache keeps nothing it would trust.
func TestTamperedLayerFailsClosed(t *testing.T) {
	r := newRegistry(t)
	img := modelImage(t, map[string][]byte{"iris.onnx": iris(t)})
	tag, _ := push(t, r, "models/iris:1", img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	r.tamper.Store(ld.String())
	dir := t.TempDir()
	_, err := cache(t, dir).Fetch(context.Background(), tag, "")
	var de *modelfetch.DigestError
	if !errors.As(err, &de) || de.Want != ld.Hex {
		t.Fatalf("err = %v, want a DigestError expecting %s", err, ld.Hex)
	}
	for _, w := range []string{tag, ld.Hex} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not name %s: %v", w, err)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "oci", "sha256", "*"))
	staging, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(entries) != 0 || len(staging) != 0 {
		t.Errorf("the cache holds %v and staging %v after a tampered fetch", entries, staging)
	}
}

// TestExternalData: a model with its weights in an external data file
// (model.onnx + model.onnx.data) arrives as one directory, and the
// predictor is given the .onnx file beside its data.
func TestExternalData(t *testing.T) {
	r := newRegistry(t)
	tag, _ := push(t, r, "models/big:1", modelImage(t, map[string][]byte{"model.onnx": []byte("graph"), "model.onnx.data": []byte("weights")}))
	p, err := cache(t, t.TempDir()).Fetch(context.Background(), tag, "")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "model.onnx" {
		t.Errorf("path %s, want model.onnx", p)
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(p), "model.onnx.data")); err != nil || string(b) != "weights" {
		t.Errorf("external data: %q, %v", b, err)
	}
}

func TestImageWithoutModels(t *testing.T) {
	r := newRegistry(t)
	layer := static.NewLayer([]byte("not a tar"), types.OCIUncompressedLayer)
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := push(t, r, "models/none:1", img)
	_, err = cache(t, t.TempDir()).Fetch(context.Background(), tag, "")
	if err == nil || !strings.Contains(err.Error(), tag) {
		t.Errorf("err = %v, want an error naming %s", err, tag)
	}
}

func TestUnknownTag(t *testing.T) {
	r := newRegistry(t)
	ref := fmt.Sprintf("oci://%s/models/iris:nope", strings.TrimPrefix(r.URL, "http://"))
	_, err := cache(t, t.TempDir()).Fetch(context.Background(), ref, "")
	if err == nil || !strings.Contains(err.Error(), ref) {
		t.Errorf("err = %v, want an error naming %s", err, ref)
	}
}

// TestLayerPaths fetches uncompressed layers (as large weights are
// pushed) each way a layer is fetched: streamed and unpacked as it
// arrives; in parallel ranges with its big file fetched straight into
// place; in parallel ranges whole, then unpacked in place (two large
// files). A tampered layer fails closed each way.
func TestLayerPaths(t *testing.T) {
	small := map[string][]byte{"a.onnx": bytes.Repeat([]byte("a"), 200<<10), "sub/b.bin": []byte("bee")}
	twoBig := map[string][]byte{"a.onnx": bytes.Repeat([]byte("a"), 200<<10), "sub/b.bin": bytes.Repeat([]byte("b"), 1200<<10)}
	ranges := []modelfetch.Option{modelfetch.WithRanges(1024, 16<<10, 4)}
	for _, tt := range []struct {
		name  string
		files map[string][]byte
		opts  []modelfetch.Option
	}{
		{"streamed", small, nil},
		{"ranges into place", small, ranges},
		{"ranges whole", twoBig, ranges},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var tb bytes.Buffer
			tw := tar.NewWriter(&tb)
			tw.WriteHeader(&tar.Header{Name: "models/", Typeflag: tar.TypeDir, Mode: 0o755})
			for _, n := range []string{"a.onnx", "sub/b.bin"} {
				tw.WriteHeader(&tar.Header{Name: "./models/" + n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(tt.files[n]))})
				tw.Write(tt.files[n])
			}
			tw.Close()
			layer := static.NewLayer(tb.Bytes(), types.OCIUncompressedLayer)
			img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer})
			if err != nil {
				t.Fatal(err)
			}
			ld, _ := layer.Digest()
			r := newRegistry(t)
			tag, _ := push(t, r, "models/two:1", img)
			open := func(dir string) *modelfetch.Cache {
				c, err := modelfetch.New(append([]modelfetch.Option{modelfetch.WithDir(dir), modelfetch.WithLogger(slog.New(slog.DiscardHandler))}, tt.opts...)...)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			p, err := open(t.TempDir()).Fetch(context.Background(), tag, "")
			if err != nil {
				t.Fatal(err)
			}
			for n, want := range tt.files {
				if got, err := os.ReadFile(filepath.Join(filepath.Dir(p), filepath.FromSlash(n))); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, %v; want %d bytes as pushed", n, len(got), err, len(want))
				}
			}
			r.tamper.Store(ld.String())
			tag2, _ := push(t, r, "models/three:1", img)
			dir := t.TempDir()
			_, err = open(dir).Fetch(context.Background(), tag2, "")
			var de *modelfetch.DigestError
			if !errors.As(err, &de) {
				t.Errorf("tampered: err = %v, want a DigestError", err)
			}
			if entries, _ := filepath.Glob(filepath.Join(dir, "oci", "sha256", "*")); len(entries) != 0 {
				t.Errorf("tampered: the cache holds %v", entries)
			}
		})
	}
}

// FuzzParseRef holds the spec's check of an oci:// reference
// (modelfetch.ParseRef, which cortex package runs) to what the fetcher
// parses at start (go-containerregistry's name.ParseReference): a
// reference the spec accepts must not fail at start for its syntax.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"oci://registry.example.com/org/iris:1", "oci://localhost:5000/a/b/c@sha256:" + strings.Repeat("ab", 32),
		"oci://127.0.0.1:5000/iris", "oci://[::1]:5000/x:y", "https://example.com/m.onnx", "s3://bucket-a/k", "oci://a.b/UPPER:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		r, err := modelfetch.ParseRef(ref, "")
		if err != nil || r.Scheme != "oci" {
			return
		}
		if _, err := name.ParseReference(r.Rest); err != nil {
			t.Errorf("ParseRef accepts %q, which the fetcher refuses: %v", ref, err)
		}
	})
}
