//go:build !race

// Built only without the race detector: these tests validate, unpack and
// run the full-size image, whose 46 MB of ONNX Runtime took over ten
// minutes through race-instrumented decompression. make test runs them in
// test-fullsize (go test ./packager/, no -race).

package packager_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/oci"
)

// TestImageRunsInRunc is the proof that the image is a real container:
// package the iris sample, validate the layout with go-containerregistry,
// inspect it with skopeo, unpack it with umoci, run it with runc (host
// network), ask it for a prediction and stop it. skopeo, umoci and runc
// are Debian packages the test task installs; runc needs root.
func TestImageRunsInRunc(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: -short")
	}
	for _, tool := range []string{"skopeo", "umoci", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make tools` (apt-get install -y umoci runc skopeo)", tool)
		}
	}
	r := pkg(t, iris, packager.Options{Tag: "e2e"})
	lay := r.Image.Layout

	// go-containerregistry's own validation of everything in the layout.
	idx, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	m, _ := idx.IndexManifest()
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}

	// skopeo.
	out := run(t, "skopeo", "inspect", "oci:"+lay+":e2e")
	var insp struct {
		Digest       string
		Architecture string
		Os           string
		Layers       []string
		Labels       map[string]string
		Env          []string
	}
	if err := json.Unmarshal(out, &insp); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if insp.Digest != r.Image.Digest || insp.Architecture != "amd64" || insp.Os != "linux" || len(insp.Layers) != len(r.Image.Layers) {
		t.Errorf("skopeo inspect: %+v, want digest %s and %d layers", insp, r.Image.Digest, len(r.Image.Layers))
	}
	if insp.Labels["dev.cortexfn.function"] != "iris" || insp.Labels["dev.cortexfn.spec.sha256"] == "" {
		t.Errorf("labels %v", insp.Labels)
	}

	// umoci unpacks it and runc runs it (host network).
	c := testutil.RunImage(t, lay, "e2e")
	if c.User != 65532 {
		t.Errorf("the image runs as uid %v, want 65532", c.User)
	}
	base := c.URL

	// A prediction: the setosa example.
	var ex struct {
		Request struct {
			Path string
			Body json.RawMessage
		}
	}
	b, _ := os.ReadFile(filepath.Join(iris, "examples", "setosa.json"))
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+ex.Request.Path, "application/json", bytes.NewReader(ex.Request.Body))
	if err != nil {
		t.Fatal(err)
	}
	var pred struct {
		ModelName string `json:"model_name"`
		Outputs   []struct {
			Name string
			Data []float64
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&pred)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("prediction: status %d, %v", resp.StatusCode, err)
	}
	if pred.ModelName != "iris" || len(pred.Outputs) == 0 || pred.Outputs[0].Name != "label" || pred.Outputs[0].Data[0] != 0 {
		t.Errorf("prediction %+v, want label 0 (setosa)", pred)
	}

	// Stop it as Knative would: SIGTERM, then it drains and exits.
	c.Stop(t)
	if !strings.Contains(c.Logs(), "ONNX Runtime loaded") {
		t.Errorf("logs:\n%s", c.Logs())
	}
}

// TestZstdImageUnpacks checks a zstd image with the real tools: umoci
// (0.4 in Debian) cannot unpack zstd layers, so skopeo reads them (checking
// each blob's digest) and writes the image again with gzip, and umoci
// unpacks that. The tree must be the one the gzip image unpacks to, file
// by file: the compression changes the blobs, never the container.
func TestZstdImageUnpacks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: -short")
	}
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make tools` (apt-get install -y umoci skopeo)", tool)
		}
	}
	dir := t.TempDir()
	z := pkg(t, iris, packager.Options{Tag: "e2e", Compression: oci.Zstd})
	regz := filepath.Join(dir, "regzipped")
	run(t, "skopeo", "copy", "--dest-compress", "--dest-compress-format", "gzip", "oci:"+z.Image.Layout+":e2e", "oci:"+regz+":e2e")
	g := pkg(t, iris, packager.Options{Tag: "e2e"})

	trees := map[string]map[string]string{}
	for name, lay := range map[string]string{"zstd": regz, "gzip": g.Image.Layout} {
		bundle := filepath.Join(dir, name)
		run(t, "umoci", "unpack", "--image", lay+":e2e", bundle)
		trees[name] = tree(t, filepath.Join(bundle, "rootfs"))
	}
	if len(trees["gzip"]) < 3 {
		t.Fatalf("the gzip image unpacked to %d files: %v", len(trees["gzip"]), trees["gzip"])
	}
	for path, sum := range trees["gzip"] {
		if trees["zstd"][path] != sum {
			t.Errorf("%s: %q from the zstd image, %q from the gzip one", path, trees["zstd"][path], sum)
		}
	}
	for path := range trees["zstd"] {
		if _, ok := trees["gzip"][path]; !ok {
			t.Errorf("%s is only in the zstd image", path)
		}
	}
	t.Logf("%d paths alike", len(trees["gzip"]))
}

// tree maps every path under root to its kind, mode and content hash.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		v := info.Mode().String()
		switch {
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			v += " -> " + target
		}
		m[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}
