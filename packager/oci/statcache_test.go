package oci_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

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
