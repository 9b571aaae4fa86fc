package oci_test

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/oci"
)

// A code-only change builds the model layer from the stat cache: the
// model is not read, and its layer keeps its digest.
func TestStatCacheDoesNotReadAnUnchangedModel(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	first := build(t, contents(t, dir, "v1"), oci.Options{CacheDir: cache})
	model := layerByName(t, first, "model")
	if model.Cached || model.Read == 0 {
		t.Fatalf("first build: model layer cached %t, read %d bytes; want built from the file", model.Cached, model.Read)
	}
	second := build(t, contents(t, dir, "v2"), oci.Options{CacheDir: cache})
	got := layerByName(t, second, "model")
	if !got.Cached || got.Read != 0 {
		t.Errorf("second build, code changed: model layer cached %t, read %d bytes; want cached, 0 bytes read", got.Cached, got.Read)
	}
	if got.Digest != model.Digest {
		t.Errorf("model layer digest moved with a code change: %s, then %s", model.Digest, got.Digest)
	}
	if bin := layerByName(t, second, "binary"); bin.Digest == layerByName(t, first, "binary").Digest {
		t.Errorf("the binary layer kept its digest %s though the binary changed", bin.Digest)
	}
	// --no-cache reads it again and gets the same layer.
	again := layerByName(t, build(t, contents(t, dir, "v2"), oci.Options{CacheDir: cache, NoCache: true}), "model")
	if again.Cached || again.Read == 0 || again.Digest != model.Digest {
		t.Errorf("no-cache build: cached %t, read %d, digest %s; want read again, digest %s", again.Cached, again.Read, again.Digest, model.Digest)
	}
}

// A model rewritten in place with its size and modification time put
// back is still seen as changed: the key holds the inode's change time,
// which a write moves and no one can set back.
func TestStatCacheSeesAnInPlaceRewrite(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the change time is in the key on Linux only")
	}
	dir, cache := t.TempDir(), t.TempDir()
	before := layerByName(t, build(t, contents(t, dir, "v1"), oci.Options{CacheDir: cache}), "model")
	model := filepath.Join(dir, "model.bin")
	st, err := os.Stat(model)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	f, err := os.OpenFile(model, os.O_WRONLY, 0) // same inode, same size
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b[:1], 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(model, time.Time{}, st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.Stat(model); now.Size() != st.Size() || !now.ModTime().Equal(st.ModTime()) {
		t.Fatalf("the rewrite changed size or mtime: %d %v, was %d %v", now.Size(), now.ModTime(), st.Size(), st.ModTime())
	}
	after := layerByName(t, build(t, contents(t, dir, "v1"), oci.Options{CacheDir: cache}), "model")
	if after.Read == 0 || after.Digest == before.Digest {
		t.Errorf("after an in-place rewrite: read %d bytes, digest %s (was %s); want the model read again and a new digest", after.Read, after.Digest, before.Digest)
	}
}

// A model layer records the SHA-256 of each of its files in the same
// pass that builds it, and FileDigest gives them back without reading the
// files while they are as they were; a rewrite makes them unknown.
func TestFileDigestRecordedByTheModelLayer(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	// Several chunks of the hashing pipeline (1 MB each, 4 in flight),
	// then a small file: each file is hashed apart.
	big := make([]byte, 5<<20+12345)
	rand.NewChaCha8([32]byte{3, 4}).Read(big)
	files := map[string][]byte{"big.bin": big, "small.bin": []byte("tokenizer")}
	var layer []artifact.File
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		layer = append(layer, artifact.File{Path: "app/model/" + name, Src: p})
	}
	c := contents(t, dir, "v1")
	c.Layers[0].Files = layer
	img := build(t, c, oci.Options{CacheDir: cache})
	validateImage(t, img) // the layer's digest and diffID are its bytes'
	for name, b := range files {
		f := artifact.File{Path: "model/" + name, Src: filepath.Join(dir, name)}
		got, ok := oci.FileDigest(cache, f)
		if want := fmt.Sprintf("%x", sha256.Sum256(b)); !ok || got != want {
			t.Errorf("FileDigest(%s) = %q, %t; want %s", name, got, ok, want)
		}
		if _, ok := oci.FileDigest(t.TempDir(), f); ok {
			t.Errorf("FileDigest(%s) known in an empty cache", name)
		}
	}
	if _, ok := oci.FileDigest(cache, artifact.File{Path: "app/cortex.json", Data: []byte(`{"name":"fn"}`)}); ok {
		t.Error("FileDigest of a generated file: known; want unknown (it has no file to key)")
	}
	// A code-only change: the layer is not read, the digests stay known.
	c2 := contents(t, dir, "v2")
	c2.Layers[0].Files = layer
	again := build(t, c2, oci.Options{CacheDir: cache})
	if l := layerByName(t, again, "model"); l.Read != 0 {
		t.Errorf("second build: the model layer read %d bytes; want 0", l.Read)
	}
	small := artifact.File{Path: "model/small.bin", Src: filepath.Join(dir, "small.bin")}
	if _, ok := oci.FileDigest(cache, small); !ok {
		t.Error("FileDigest(small.bin) unknown after a code-only change")
	}
	// Rewritten (same size; the change time moves): unknown.
	if err := os.WriteFile(small.Src, []byte("TOKENIZER"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum, ok := oci.FileDigest(cache, small); ok {
		t.Errorf("FileDigest(small.bin) after a rewrite = %s; want unknown", sum)
	}
}

// TestTrimCache: TrimCache removes the layer cache's entries unused for
// five days (a blob with its record, a stat entry, a file's digest) and
// keeps those a build or FileDigest used since.
func TestTrimCache(t *testing.T) {
	cache := t.TempDir()
	layers := filepath.Join(cache, "layers")
	week := time.Now().Add(-6 * 24 * time.Hour)
	write := func(rel string) string {
		t.Helper()
		path := filepath.Join(layers, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{}"), 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, week, week); err != nil {
			t.Fatal(err)
		}
		return path
	}
	gone := []string{write("gzip-0/aa.blob"), write("gzip-0/aa.json"), write("gzip-0/stat/bb.json"), write("files/cc.json")}
	// A file whose digest a build recorded six days ago, asked for now.
	src := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(src, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := artifact.File{Path: "model.onnx", Src: src}
	kept := oci.RecordFileDigest(t, cache, f, strings.Repeat("ab", 32))
	if err := os.Chtimes(kept, week, week); err != nil {
		t.Fatal(err)
	}
	if _, ok := oci.FileDigest(cache, f); !ok {
		t.Fatal("FileDigest did not find the recorded digest")
	}
	oci.TrimCache(cache)
	for _, p := range gone {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s, unused for six days, is still there", p)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the digest FileDigest used was removed: %v", err)
	}
}

// TestTrimCacheKeepsWhatABuildUsed: layers a build took from the cache,
// by the stat cache (the model, the config) or by its hash (the binary,
// written again with the same bytes), are marked used and survive a trim
// of entries unused for five days; a layer no build has used since goes.
func TestTrimCacheKeepsWhatABuildUsed(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	old := layerByName(t, build(t, contents(t, dir, "v0"), oci.Options{CacheDir: cache}), "binary")
	build(t, contents(t, dir, "v1"), oci.Options{CacheDir: cache})
	week := time.Now().Add(-6 * 24 * time.Hour)
	err := filepath.WalkDir(filepath.Join(cache, "layers"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(path, week, week)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	again := build(t, contents(t, dir, "v1"), oci.Options{CacheDir: cache})
	oci.TrimCache(cache)
	blob := func(l oci.LayerInfo) bool {
		m, _ := filepath.Glob(filepath.Join(cache, "layers", "*", strings.TrimPrefix(l.DiffID, "sha256:")+".blob"))
		return len(m) == 1
	}
	for _, name := range []string{"model", "binary", "config"} {
		l := layerByName(t, again, name)
		if !l.Cached {
			t.Errorf("%s layer: built again, want it from the cache", name)
		}
		if !blob(l) {
			t.Errorf("%s layer, used by the last build: its blob was trimmed", name)
		}
	}
	if blob(old) {
		t.Error("the v0 binary layer, unused for six days, is still in the cache")
	}
}
