package oci

import (
	"path/filepath"
	"testing"

	"github.com/cortexfn/cortex/packager/artifact"
)

// Uncompressed is the layer compression Build offers no caller
// (Lambda refuses uncompressed layers), for the benchmark to measure.
const Uncompressed = uncompressed

// RecordFileDigest records sum as f's digest in the layer cache under
// cacheDir, as a layer's build does, and returns the record's path.
func RecordFileDigest(t testing.TB, cacheDir string, f artifact.File, sum string) string {
	t.Helper()
	key, ok := fileKey(f)
	if !ok {
		t.Fatalf("%s has no digest key", f.Path)
	}
	b := &layerBuilder{dir: filepath.Join(cacheDir, layersDir)}
	b.rememberFiles([]string{key}, []string{sum})
	return filepath.Join(cacheDir, layersDir, "files", key+".json")
}
