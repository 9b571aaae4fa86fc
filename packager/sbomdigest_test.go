//go:build !race

// Built only without -race, as fullsize_test.go: its last package is
// --no-cache, which compresses the function binary again.

package packager_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cortexfn/cortex/packager"
)

// The model is read once per change: a first package reads it for its
// layer, which records its SHA-256 in the same pass, and the SBOM takes
// the digest from there; a second package after a change that leaves the
// model alone reads none of it (the layer from the stat cache, the SBOM
// from the recorded digest). SBOMResult.Hashed lists the files the SBOM
// read; the layer's Read counts what the layer read.
func TestModelReadOnceForLayerAndSBOM(t *testing.T) {
	dir := copyDir(t, iris)
	model, err := os.ReadFile(filepath.Join(dir, "model", "iris.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x", sha256.Sum256(model))
	check := func(name string, r *packager.Result, layerRead bool) {
		t.Helper()
		if l := layer(t, r, "model"); (l.Read > 0) != layerRead {
			t.Errorf("%s: the model layer read %d bytes; want the model read: %t", name, l.Read, layerRead)
		}
		if slices.Contains(r.Image.SBOM.Hashed, "model/iris.onnx") {
			t.Errorf("%s: the SBOM read model/iris.onnx to hash it (hashed %v); want its digest from the model layer", name, r.Image.SBOM.Hashed)
		}
		if got := sbomHash(t, r.Image.SBOM.File, "model:model/iris.onnx"); got != want {
			t.Errorf("%s: the SBOM gives the model SHA-256 %s; want the file's, %s", name, got, want)
		}
	}
	out := []packager.Output{packager.OutputLayout}
	check("first package", pkg(t, dir, packager.Options{Outputs: out}), true)
	editSpec(t, dir, "timeout: 10s", "timeout: 20s")
	second := pkg(t, dir, packager.Options{Outputs: out})
	check("second package, the model unchanged", second, false)
	// Only the binary, which every change rebuilds, is read for it: the
	// runtime library's digest came from its layer too.
	if got, want := second.Image.SBOM.Hashed, []string{"iris"}; !slices.Equal(got, want) {
		t.Errorf("second package: the SBOM read %v; want only %v", got, want)
	}
	// --no-cache trusts no recorded digest: the SBOM reads the model.
	r := pkg(t, dir, packager.Options{Outputs: out, BuildOptions: packager.BuildOptions{NoCache: true}})
	if !slices.Contains(r.Image.SBOM.Hashed, "model/iris.onnx") {
		t.Errorf("--no-cache: the SBOM hashed %v; want model/iris.onnx read", r.Image.SBOM.Hashed)
	}
}

// sbomHash is the SHA-256 the CycloneDX document at p gives the component
// ref.
func sbomHash(t *testing.T, p, ref string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components []struct {
			BOMRef string `json:"bom-ref"`
			Hashes []struct {
				Alg     string `json:"alg"`
				Content string `json:"content"`
			} `json:"hashes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Components {
		if c.BOMRef == ref && len(c.Hashes) == 1 && c.Hashes[0].Alg == "SHA-256" {
			return c.Hashes[0].Content
		}
	}
	t.Fatalf("%s has no component %s with one SHA-256", p, ref)
	return ""
}
