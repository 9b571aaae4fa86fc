package packager_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zip"

	"github.com/cortexfn/cortex/packager"
)

// zipEntry returns the bytes of one entry of the zip at p.
func zipEntry(t *testing.T, p, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f, err := zr.Open(name)
	if err != nil {
		t.Fatalf("%s in %s: %v", name, p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A hard link is a second name for an outside file: it passes every path
// check, so the packager counts links and refuses one whose other names
// are not in the function directory, unless told to ship it.
func TestHardLinkFromOutsideRefused(t *testing.T) {
	dir := copyDir(t, iris)
	secret := filepath.Join(t.TempDir(), "secret.onnx")
	if err := os.WriteFile(secret, []byte("outside secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(secret, filepath.Join(dir, "model", "hl.onnx")); err != nil {
		t.Fatal(err)
	}
	editSpec(t, dir, "model: model/iris.onnx", "model: model")
	out := filepath.Join(t.TempDir(), "dist")
	_, err := packager.Package(context.Background(), dir, packager.Options{Out: out, Outputs: []packager.Output{packager.OutputLambda}})
	if !errors.Is(err, packager.ErrHardLink) || !strings.Contains(err.Error(), "model/hl.onnx") || !strings.Contains(err.Error(), "--allow-hardlinks") {
		t.Fatalf("packaging a hard link to an outside file: %v, want ErrHardLink naming model/hl.onnx and --allow-hardlinks", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s was written: %v", out, err)
	}
	r := pkg(t, dir, packager.Options{BuildOptions: packager.BuildOptions{AllowHardlinks: true}, Outputs: []packager.Output{packager.OutputLambda}})
	if got := zipEntry(t, r.Lambda.Zip, "model/hl.onnx"); string(got) != "outside secret" {
		t.Errorf("with AllowHardlinks the zip holds %q", got)
	}
}

// Two names for one file, both inside the function directory, are fine.
func TestHardLinkInsideShipped(t *testing.T) {
	dir := copyDir(t, iris)
	if err := os.Link(filepath.Join(dir, "model", "iris.onnx"), filepath.Join(dir, "model", "copy.onnx")); err != nil {
		t.Fatal(err)
	}
	editSpec(t, dir, "model: model/iris.onnx", "model: model/copy.onnx")
	r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLambda}})
	want, _ := os.ReadFile(filepath.Join(iris, "model", "iris.onnx"))
	if got := zipEntry(t, r.Lambda.Zip, "model/copy.onnx"); !bytes.Equal(got, want) {
		t.Errorf("the zip's model/copy.onnx is %d bytes, want the model's %d", len(got), len(want))
	}
}
