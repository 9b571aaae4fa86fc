package packager_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/cortexfn/cortex/packager"
)

// externalDataFunction is the iris function with its model swapped for
// one whose weights are in model/weights.data (packager.ONNXModel).
func externalDataFunction(t *testing.T, location string) string {
	t.Helper()
	dir := copyDir(t, iris)
	model, data := packager.ONNXModel(location)
	if err := os.WriteFile(filepath.Join(dir, "model", "iris.onnx"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model", "weights.data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// layerEntries lists the regular files in the layer of the layout's image
// whose diffID is diffID.
func layerEntries(t *testing.T, lay, diffID string) []string {
	t.Helper()
	p, err := layout.FromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(diffID)
	if err != nil {
		t.Fatal(err)
	}
	l, err := img.LayerByDiffID(h)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			names = append(names, hdr.Name)
		}
	}
}

// An ONNX model with external data ships its data file: in a layer of its
// own in the image, beside the model in the Lambda zip.
func TestExternalDataPackaged(t *testing.T) {
	dir := externalDataFunction(t, "weights.data")
	// A file beside the model that the model does not name stays out.
	if err := os.WriteFile(filepath.Join(dir, "model", "unused.data"), []byte("not named"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLayout, packager.OutputLambda}})
	if got, want := layerEntries(t, r.Image.Layout, layer(t, r, "model-data").DiffID), []string{"app/model/weights.data"}; !slices.Equal(got, want) {
		t.Errorf("model-data layer holds %v; want %v", got, want)
	}
	if got, want := layerEntries(t, r.Image.Layout, layer(t, r, "model").DiffID), []string{"app/model/iris.onnx"}; !slices.Equal(got, want) {
		t.Errorf("model layer holds %v; want %v", got, want)
	}
	_, data := packager.ONNXModel("weights.data")
	if got := zipEntry(t, r.Lambda.Zip, "model/weights.data"); string(got) != string(data) {
		t.Errorf("the zip's model/weights.data is %d bytes; want the %d bytes of the data file", len(got), len(data))
	}
	if zipHas(t, r.Lambda.Zip, "model/unused.data") {
		t.Error("the zip ships model/unused.data, which the model does not name")
	}
	// A code change keeps both model layers, unread.
	editSpec(t, dir, "timeout: 10s", "timeout: 20s")
	again := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLayout}})
	for _, name := range []string{"model", "model-data"} {
		before, after := layer(t, r, name), layer(t, again, name)
		if after.Digest != before.Digest || after.Read != 0 {
			t.Errorf("%s layer after a spec change: %s, %d bytes read; want %s, 0 bytes read", name, after.Digest, after.Read, before.Digest)
		}
	}
}

func TestExternalDataRefused(t *testing.T) {
	for _, tc := range []struct {
		name, location string
		prepare        func(t *testing.T, dir string)
		want           []string
	}{
		{name: "outside the model's directory", location: "../secret.data",
			want: []string{"predictor.model", "model/iris.onnx", `tensor "W"`, `"../secret.data"`, "not a path inside the model's directory"}},
		{name: "absolute", location: "/etc/passwd",
			want: []string{"model/iris.onnx", `tensor "W"`, `"/etc/passwd"`}},
		{name: "missing", location: "gone.data",
			want: []string{"model/iris.onnx", `tensor "W"`, `"gone.data"`, "model/gone.data", "is not there"}},
		{name: "truncated", location: "weights.data",
			prepare: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, "model", "weights.data"), 50); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{`tensor "B"`, "bytes 48 to 60", "model/weights.data", "has 50"}},
		{name: "a link out of the function", location: "link.data",
			prepare: func(t *testing.T, dir string) {
				outside := filepath.Join(t.TempDir(), "outside.data")
				if err := os.WriteFile(outside, make([]byte, 60), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, filepath.Join(dir, "model", "link.data")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{`tensor "W"`, "link.data", "outside the function directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := externalDataFunction(t, tc.location)
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			a, err := packager.Build(context.Background(), dir, raceSized(t, packager.BuildOptions{}))
			if err == nil {
				a.Close()
				t.Fatal("Build succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
