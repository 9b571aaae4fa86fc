package packager_test

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cortexfn/cortex/packager"
)

// pulledModels pulls the model image ref (oci://...) with ggcr and returns
// the sha256 of each file under models/, and the files of each layer.
func pulledModels(t *testing.T, ref string) (map[string]string, [][]string) {
	t.Helper()
	r, ok := strings.CutPrefix(ref, "oci://")
	if !ok {
		t.Fatalf("model reference %q does not start with oci://", ref)
	}
	d, err := name.NewDigest(r)
	if err != nil {
		t.Fatalf("model reference %q is not by digest: %v", ref, err)
	}
	img, err := remote.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	perLayer := make([][]string, len(layers))
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(hdr.Name, "models/") {
				t.Errorf("the model image holds %s, outside models/", hdr.Name)
			}
			if hdr.Typeflag != tar.TypeReg {
				continue
			}
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				t.Fatal(err)
			}
			files[hdr.Name] = hex.EncodeToString(h.Sum(nil))
			perLayer[i] = append(perLayer[i], hdr.Name)
		}
		rc.Close()
	}
	return files, perLayer
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// --push-model pushes the model and its external data under /models, in
// two layers, and reports the oci:// reference by digest; pulled with
// ggcr, the files have the bytes of the function's.
func TestPushModel(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := externalDataFunction(t, "weights.data")

	r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLayout}, PushModel: "oci://" + host + "/acme/iris-model:v1"})
	if r.Model == nil {
		t.Fatal("no Result.Model after --push-model")
	}
	if want := "oci://" + host + "/acme/iris-model@" + r.Model.Digest; r.Model.Ref != want {
		t.Errorf("model ref %q, want %q", r.Model.Ref, want)
	}
	files, layers := pulledModels(t, r.Model.Ref)
	want := map[string]string{
		"models/iris.onnx":    fileSHA256(t, filepath.Join(dir, "model", "iris.onnx")),
		"models/weights.data": fileSHA256(t, filepath.Join(dir, "model", "weights.data")),
	}
	if !maps.Equal(files, want) {
		t.Errorf("model image files %v, want %v", files, want)
	}
	// The external data in a layer of its own, first (it changes least).
	if want := [][]string{{"models/weights.data"}, {"models/iris.onnx"}}; !slices.EqualFunc(layers, want, slices.Equal) {
		t.Errorf("model image layers hold %v, want %v", layers, want)
	}
	if got := r.Model.Layers; len(got) != 2 || got[0].Name != "model-data" || got[1].Name != "model" {
		t.Errorf("Result.Model.Layers %+v; want model-data, model", got)
	}
	var summary strings.Builder
	r.WriteSummary(&summary)
	if !strings.Contains(summary.String(), "predictor.model: "+r.Model.Ref) {
		t.Errorf("the summary does not say how to use the model:\n%s", summary.String())
	}
	// The tag names the same image.
	tagged, err := remote.Image(mustTag(t, host+"/acme/iris-model:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := tagged.Digest(); d.String() != r.Model.Digest {
		t.Errorf("tag v1 is %s, pushed %s", d, r.Model.Digest)
	}
}

func TestPushModelRefused(t *testing.T) {
	_, err := packager.Package(t.Context(), iris, packager.Options{Out: filepath.Join(t.TempDir(), "dist"), PushModel: "Not A Ref::"})
	if err == nil || !strings.Contains(err.Error(), "--push-model") {
		t.Errorf("Package with a bad --push-model: %v; want an error naming the flag", err)
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
