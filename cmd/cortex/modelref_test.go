package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil/ocitest"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestServeModelByReference serves the iris sample three ways under one
// cortex serve: with its model embedded, and twice (two functions) with
// the model named oci:// in go-containerregistry's registry, in this
// process (and once more as a model of a multi-model function); another names an https:// model with a wrong digest. The two
// oci functions answer as the embedded one does, the registry sends the
// model's layer once for both, and the fourth fails to start, naming
// the reference and the digest, leaving nothing in the cache.
func TestServeModelByReference(t *testing.T) {
	model, err := os.ReadFile("../../samples/iris/model/iris.onnx")
	if err != nil {
		t.Fatal(err)
	}
	var layerGets atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			layerGets.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	host := strings.TrimPrefix(srv.URL, "http://")

	// A ModelCar image: the model under /models.
	img := ocitest.Image(t, map[string][]byte{"models/iris.onnx": model})
	ref, err := name.ParseReference(host + "/models/iris:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	pushed := layerGets.Load()

	// The https server, trusted by the function processes through
	// SSL_CERT_FILE (which cortex serve passes on).
	https := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(model) }))
	defer https.Close()
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: https.Certificate().Raw}), 0o644)
	t.Setenv("SSL_CERT_FILE", certFile)
	cache := t.TempDir()
	t.Setenv("CORTEX_MODEL_CACHE", cache)

	root := t.TempDir()
	embedded := filepath.Join(root, "iris")
	copyFunctionDir(t, "../../samples/iris", embedded)
	wrong := sha256.Sum256([]byte("not the model"))
	var dirs []string
	for _, fn := range []struct{ name, model string }{
		{"iris-oci", "model: oci://" + host + "/models/iris:1"},
		{"iris-oci-too", "model: oci://" + host + "/models/iris:1"},
		{"iris-https", "model: " + https.URL + "/iris.onnx\n  model_sha256: " + hex.EncodeToString(wrong[:])},
		// A multi-model function: the repository finds the fetched model
		// where runtime.ModelPath said it would be.
		{"iris-multi", "models: [{name: iris-multi, path: \"oci://" + host + "/models/iris:1\"}]"},
	} {
		dir := filepath.Join(root, fn.name)
		copyFunctionDir(t, "../../samples/iris", dir)
		os.RemoveAll(filepath.Join(dir, "model")) // nothing to embed
		y, _ := os.ReadFile(filepath.Join(dir, "cortex.yaml"))
		y = []byte(strings.Replace(strings.Replace(string(y), "name: iris", "name: "+fn.name, 1), "model: model/iris.onnx", fn.model, 1))
		os.WriteFile(filepath.Join(dir, "cortex.yaml"), y, 0o644)
		dirs = append(dirs, dir)
	}
	s := startServe(t, append([]string{embedded}, dirs...), serveOptions{}, 5)

	predict := func(fn string) (int, string) {
		resp, err := watchClient.Post(s.base+"/"+fn+"/v2/models/"+fn+"/infer", "application/json",
			strings.NewReader(`{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		// The answer names its model; compare the rest.
		return resp.StatusCode, strings.ReplaceAll(string(b), `"`+fn+`"`, `"MODEL"`)
	}
	code, want := predict("iris")
	if code != http.StatusOK {
		t.Fatalf("embedded iris: %d %s", code, want)
	}
	for _, fn := range []string{"iris-oci", "iris-oci-too", "iris-multi"} {
		if code, got := predict(fn); code != http.StatusOK || got != want {
			t.Errorf("%s: %d %s\nwant the embedded model's answer %s", fn, code, got, want)
		}
	}
	if n := layerGets.Load() - pushed; n != 1 {
		t.Errorf("%d blob GETs for three functions, want 1: the model's layer, once", n)
	}

	code, body := predict("iris-https")
	if code == http.StatusOK {
		t.Fatalf("iris-https answered %s with a model of the wrong digest", body)
	}
	// The process's start error, as cortex serve shows it on stderr.
	wantErr := "fetching model " + https.URL + "/iris.onnx (sha256 " + hex.EncodeToString(wrong[:]) + ")"
	for deadline := time.Now().Add(time.Minute); !strings.Contains(s.stderr.String(), wantErr); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve's stderr does not show %q", wantErr)
		}
	}
	if st := s.status(t)["iris-https"]; st.LastError == "" {
		t.Errorf("/-/status shows no start failure for iris-https: %+v", st)
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "sha256", "*")); len(entries) != 0 {
		t.Errorf("the cache holds %v after a model of the wrong digest", entries)
	}
}
