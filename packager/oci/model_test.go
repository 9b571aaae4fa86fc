package oci_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/oci"
)

// ModelImage holds the models under models/ and nothing else, and is a
// valid image by go-containerregistry's checks.
func TestModelImage(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(model, []byte("graph"), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := oci.ModelImage(context.Background(), []oci.Layer{
		{Name: "model-data"}, // empty: left out
		{Name: "model", Level: oci.Fast, Files: []artifact.File{{Path: "iris/model.onnx", Src: model}}},
	}, map[string]string{"k": "v"}, oci.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if err := validate.Image(img.Image); err != nil {
		t.Error(err)
	}
	layers, err := img.Image.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v); want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	if want := []string{"models/", "models/iris/", "models/iris/model.onnx"}; !slices.Equal(names, want) {
		t.Errorf("layer holds %v, want %v", names, want)
	}
	cf, err := img.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) != 0 || cf.Config.Labels["k"] != "v" || cf.OS != "linux" {
		t.Errorf("config %+v; want no entrypoint, the labels, os linux", cf.Config)
	}
	if _, err := oci.ModelImage(context.Background(), []oci.Layer{{Name: "model"}}, nil, oci.Options{CacheDir: t.TempDir()}); err == nil {
		t.Error("a model image of no files was built")
	}
}
