package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/registry"
)

// cortex package --push-model prints the model's oci:// reference by
// digest, with how to use it, on stdout, and gives it in --output json.
func TestPackagePushModel(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	repo := strings.TrimPrefix(reg.URL, "http://") + "/acme/iris-model"
	fn := filepath.Join(t.TempDir(), "iris")
	if err := os.CopyFS(fn, os.DirFS("../../samples/iris")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(fn, "dist"))

	out, errOut, err := run(t, "", "package", fn, "--outputs", "lambda", "--push-model", repo+":v1", "-o", "json")
	if err != nil {
		t.Fatalf("package --push-model: %v\n%s", err, errOut)
	}
	var res struct {
		Model struct {
			Ref    string   `json:"ref"`
			Digest string   `json:"digest"`
			Files  []string `json:"files"`
		} `json:"model"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out)
	}
	if want := "oci://" + repo + "@" + res.Model.Digest; res.Model.Ref != want || !strings.HasPrefix(res.Model.Digest, "sha256:") {
		t.Errorf("model.ref %q, want %q", res.Model.Ref, want)
	}
	if len(res.Model.Files) != 1 || res.Model.Files[0] != "/models/iris.onnx" {
		t.Errorf("model.files %v, want [/models/iris.onnx]", res.Model.Files)
	}
	if d, err := crane.Digest(repo+":v1", crane.Insecure); err != nil || d != res.Model.Digest {
		t.Errorf("the registry's %s:v1 is %s (%v), want %s", repo, d, err, res.Model.Digest)
	}
	if !strings.Contains(errOut, "pushed "+repo+"@"+res.Model.Digest) {
		t.Errorf("no progress line for the push on stderr:\n%s", errOut)
	}

	out, _, err = run(t, "", "package", fn, "--outputs", "lambda", "--push-model", repo+":v2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "predictor.model: oci://"+repo+"@"+res.Model.Digest) {
		t.Errorf("the summary does not say how to use the model (the same model, the same digest):\n%s", out)
	}
}
