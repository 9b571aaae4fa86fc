package oci_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/oci"
)

// contents is a small function image: a "model" and a "binary".
func contents(t *testing.T, dir, code string) oci.Contents {
	t.Helper()
	model := filepath.Join(dir, "model.bin")
	if _, err := os.Stat(model); err != nil {
		if err := os.WriteFile(model, []byte(strings.Repeat("weights ", 4096)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "fn-"+code)
	if err := os.WriteFile(bin, []byte("#!binary "+code), 0o700); err != nil {
		t.Fatal(err)
	}
	return oci.Contents{
		Layers: []oci.Layer{
			{Name: "model", Level: oci.Fast, Files: []artifact.File{{Path: "app/model/model.bin", Src: model}}},
			{Name: "binary", Files: []artifact.File{{Path: "app/fn", Src: bin, Mode: 0o755}}},
			{Name: "empty"},
			{Name: "config", Files: []artifact.File{{Path: "app/cortex.json", Data: []byte(`{"name":"fn"}`)}}},
		},
		Entrypoint: []string{"/app/fn"},
		Env:        []string{"PORT=8080"},
		WorkingDir: "/app",
		Labels:     map[string]string{"dev.cortexfn.function": "fn"},
	}
}

func build(t *testing.T, c oci.Contents, o oci.Options) *oci.Image {
	t.Helper()
	img, err := oci.Build(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func layerByName(t *testing.T, img *oci.Image, name string) oci.LayerInfo {
	t.Helper()
	for _, l := range img.Layers {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("no %s layer in %v", name, img.Layers)
	return oci.LayerInfo{}
}

func TestBuildIsValidAndReproducible(t *testing.T) {
	for _, comp := range []oci.Compression{oci.Gzip, oci.Zstd} {
		t.Run(string(comp), func(t *testing.T) {
			dir := t.TempDir()
			c := contents(t, dir, "v1")
			a := build(t, c, oci.Options{Compression: comp, CacheDir: filepath.Join(dir, "cache-a")})
			b := build(t, c, oci.Options{Compression: comp, CacheDir: filepath.Join(dir, "cache-b"), NoCache: true})
			if a.Digest != b.Digest {
				t.Fatalf("two builds differ: %s and %s", a.Digest, b.Digest)
			}
			validateImage(t, a)
			if got, want := len(a.Layers), 4; got != want { // base, model, binary, config
				t.Errorf("%d layers, want %d: %+v", got, want, a.Layers)
			}
			want := types.OCILayer
			if comp == oci.Zstd {
				want = types.OCILayerZStd
			}
			for _, l := range a.Layers {
				if l.MediaType != want {
					t.Errorf("layer %s: media type %s, want %s", l.Name, l.MediaType, want)
				}
			}
			mt, _ := a.Image.MediaType()
			if mt != types.OCIManifestSchema1 {
				t.Errorf("manifest media type %s, want an OCI image manifest", mt)
			}
			cf, err := a.Image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Config.User != "65532:65532" || cf.Config.WorkingDir != "/app" || cf.Config.Entrypoint[0] != "/app/fn" || !cf.Created.Time.Equal(time.Unix(0, 0)) {
				t.Errorf("config %+v, created %v", cf.Config, cf.Created)
			}

			// Changing only code keeps the model layer.
			c2 := contents(t, dir, "v2")
			d := build(t, c2, oci.Options{Compression: comp, CacheDir: filepath.Join(dir, "cache-a")})
			if d.Digest == a.Digest {
				t.Fatal("a code change did not change the image")
			}
			if got, want := layerByName(t, d, "model").Digest, layerByName(t, a, "model").Digest; got != want {
				t.Errorf("model layer changed with code: %s, was %s", got, want)
			}
			if !layerByName(t, d, "model").Cached {
				t.Error("the unchanged model layer was compressed again, not taken from the cache")
			}
			if layerByName(t, d, "binary").Digest == layerByName(t, a, "binary").Digest {
				t.Error("binary layer did not change")
			}
		})
	}
}

// validateImage runs validate.Image; for zstd, whose layers validate
// cannot read (it always gunzips), it validates the manifest and config
// and checks each layer's digest and diffID itself.
func validateImage(t *testing.T, img *oci.Image) {
	t.Helper()
	mt, _ := img.Image.Layers()
	zstd := false
	for _, l := range mt {
		if m, _ := l.MediaType(); m == types.OCILayerZStd {
			zstd = true
		}
	}
	if !zstd {
		if err := validate.Image(img.Image); err != nil {
			t.Fatalf("validate.Image: %v", err)
		}
		return
	}
	if err := validate.Image(img.Image, validate.Fast); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	for i, l := range mt {
		for _, f := range []struct {
			open func() (io.ReadCloser, error)
			want func() (v1.Hash, error)
		}{{l.Compressed, l.Digest}, {l.Uncompressed, l.DiffID}} {
			rc, err := f.open()
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := v1.SHA256(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := f.want(); got != want {
				t.Errorf("layer %d: sha256 %s, want %s", i, got, want)
			}
		}
	}
}

// TestLayerTar checks the tar of a layer: sorted, parents first, fixed
// times and owners, regular files and directories only.
func TestLayerTar(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	created, err := oci.SourceDateEpoch()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "z")
	os.WriteFile(src, []byte("zz"), 0o600)
	img := build(t, oci.Contents{Layers: []oci.Layer{{Name: "files", Files: []artifact.File{
		{Path: "b/z", Src: src},
		{Path: "/a/y/x", Data: []byte("x"), Mode: 0o755},
		{Path: "a/b", Data: []byte("b")},
	}}}}, oci.Options{Created: created, CacheDir: dir})
	layers, _ := img.Image.Layers()
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
		if !h.ModTime.Equal(time.Unix(1700000000, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uid %d gid %d uname %q", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
			t.Errorf("%s: type %c", h.Name, h.Typeflag)
		}
		if h.Name == "b/z" && h.Mode != 0o644 {
			t.Errorf("b/z mode %o, want 644 whatever the file's own", h.Mode)
		}
		if h.Name == "a/y/x" && h.Mode != 0o755 {
			t.Errorf("a/y/x mode %o, want 755", h.Mode)
		}
	}
	want := []string{"a/", "a/b", "a/y/", "a/y/x", "b/", "b/z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("entries %v, want %v", got, want)
	}
}

func TestBuiltinBase(t *testing.T) {
	dir := t.TempDir()
	for _, cgo := range []bool{false, true} {
		c := contents(t, dir, "v1")
		c.CGO = cgo
		img := build(t, c, oci.Options{CacheDir: dir})
		layers, _ := img.Image.Layers()
		rc, _ := layers[0].Uncompressed()
		tr := tar.NewReader(rc)
		files := map[string]*tar.Header{}
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			files[strings.TrimSuffix(h.Name, "/")] = h
		}
		rc.Close()
		for _, want := range []string{"etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt", "tmp", "home/nonroot"} {
			if files[want] == nil {
				t.Errorf("cgo=%v: base has no %s", cgo, want)
			}
		}
		if h := files["tmp"]; h != nil && h.Mode != 0o1777 {
			t.Errorf("/tmp mode %o, want 1777", h.Mode)
		}
		if h := files["home/nonroot"]; h != nil && h.Uid != oci.NonRootUID {
			t.Errorf("/home/nonroot uid %d", h.Uid)
		}
		_, hasLoader := files["lib64/ld-linux-x86-64.so.2"]
		hasStdcxx := false
		for n := range files {
			if strings.HasSuffix(n, "/libstdc++.so.6") {
				hasStdcxx = true
			}
		}
		if cgo && (!hasLoader || !hasStdcxx) {
			t.Errorf("cgo base lacks the loader (%v) or libstdc++ (%v)", hasLoader, hasStdcxx)
		}
		if !cgo && (hasLoader || hasStdcxx) {
			t.Errorf("the static base carries C libraries")
		}
		if want := map[bool]string{false: "builtin", true: "builtin-cc"}[cgo]; img.Base.Ref != want {
			t.Errorf("base %q, want %q", img.Base.Ref, want)
		}
	}
}

// countingRegistry is go-containerregistry's in-process registry with a
// count of blob uploads (a monolithic or chunked upload ends with a PUT
// carrying ?digest=).
type countingRegistry struct {
	h       http.Handler
	uploads atomic.Int64
	digests chan string
}

func (c *countingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
		c.uploads.Add(1)
		select {
		case c.digests <- r.URL.Query().Get("digest"):
		default:
		}
	}
	c.h.ServeHTTP(w, r)
}

func TestPushPullAndBaseFromRegistry(t *testing.T) {
	reg := &countingRegistry{h: registry.New(registry.Logger(log.New(io.Discard, "", 0))), digests: make(chan string, 100)}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	img := build(t, contents(t, dir, "v1"), oci.Options{CacheDir: dir})

	ref := host + "/acme/fn:latest"
	dig, err := oci.Push(context.Background(), img.Image, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dig.DigestStr() != img.Digest.String() {
		t.Errorf("pushed %s, built %s", dig, img.Digest)
	}
	if n := reg.uploads.Load(); n != int64(len(img.Layers)+1) { // layers + config
		t.Errorf("first push uploaded %d blobs, want %d", n, len(img.Layers)+1)
	}
	pulled, err := remote.Image(dig)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != img.Digest {
		t.Errorf("pulled %s, pushed %s", d, img.Digest)
	}
	if err := validate.Image(pulled); err != nil {
		t.Error(err)
	}

	// A code change: only the changed layers and the config go up.
	reg.uploads.Store(0)
	drain(reg.digests)
	img2 := build(t, contents(t, dir, "v2"), oci.Options{CacheDir: dir})
	if _, err := oci.Push(context.Background(), img2.Image, host+"/acme/fn:v2", nil); err != nil {
		t.Fatal(err)
	}
	model := layerByName(t, img2, "model").Digest
	for _, d := range drain(reg.digests) {
		if d == model {
			t.Error("the unchanged model layer was uploaded again")
		}
	}
	if n := reg.uploads.Load(); n != 2 { // binary layer + config
		t.Errorf("second push uploaded %d blobs, want 2 (binary and config)", n)
	}

	// The pushed image serves as a base, pulled from the registry; and
	// written as a layout, it serves as a base read from disk.
	on := build(t, oci.Contents{Layers: []oci.Layer{{Name: "extra", Files: []artifact.File{{Path: "app/extra", Data: []byte("x")}}}}, Entrypoint: []string{"/app/fn"}},
		oci.Options{Base: ref, CacheDir: dir})
	if got, want := len(on.Layers), len(img.Layers)+1; got != want {
		t.Errorf("image on a pulled base has %d layers, want %d", got, want)
	}
	lay := filepath.Join(dir, "layout")
	if err := oci.WriteLayout(lay, img.Image, "v1"); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"oci:" + lay + ":v1", lay} {
		on2 := build(t, oci.Contents{Layers: []oci.Layer{{Name: "extra", Files: []artifact.File{{Path: "app/extra", Data: []byte("x")}}}}, Entrypoint: []string{"/app/fn"}},
			oci.Options{Base: base, CacheDir: dir})
		if on2.Digest != on.Digest {
			t.Errorf("base %s: digest %s, want %s (the same base pulled)", base, on2.Digest, on.Digest)
		}
	}
	if _, err := oci.Build(context.Background(), oci.Contents{}, oci.Options{Base: "oci:" + lay + ":nope", CacheDir: dir}); err == nil {
		t.Error("a missing tag in a base layout was accepted")
	}
}

func drain(c chan string) []string {
	var out []string
	for {
		select {
		case d := <-c:
			out = append(out, d)
		default:
			return out
		}
	}
}

func TestWriteLayoutAndTarball(t *testing.T) {
	dir := t.TempDir()
	img := build(t, contents(t, dir, "v1"), oci.Options{CacheDir: dir})
	lay := filepath.Join(dir, "oci")
	if err := oci.WriteLayout(lay, img.Image, "latest"); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	if len(m.Manifests) != 1 || m.Manifests[0].Digest != img.Digest || m.Manifests[0].Annotations[oci.RefNameAnnotation] != "latest" {
		t.Errorf("index %+v", m.Manifests)
	}
	if !m.Manifests[0].MediaType.IsImage() {
		t.Errorf("the layout holds %s, want a single-platform image manifest", m.Manifests[0].MediaType)
	}
	if p := m.Manifests[0].Platform; p == nil || p.OS != "linux" || p.Architecture != "amd64" {
		t.Errorf("the index names platform %+v, want linux/amd64", p)
	}
	if err := validate.Index(idx); err != nil {
		t.Error(err)
	}
	// The model layer is linked from the layer cache, not copied again
	// (same inode: one more link than the cache's own name).
	model := layerByName(t, img, "model")
	blob := filepath.Join(lay, "blobs", "sha256", strings.TrimPrefix(model.Digest, "sha256:"))
	if st, err := os.Stat(blob); err != nil {
		t.Error(err)
	} else if links := st.Sys().(*syscall.Stat_t).Nlink; links != 2 {
		t.Errorf("the model layer's blob in the layout has %d links; want 2 (linked from the layer cache)", links)
	}
	if err := oci.WriteTarball(filepath.Join(dir, "image.tar"), img.Image, "cortex.local/fn:latest"); err != nil {
		t.Fatal(err)
	}
	if err := oci.WriteTarball(filepath.Join(dir, "bad.tar"), img.Image, "UPPER/case:@"); err == nil {
		t.Error("a bad tag was accepted")
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := oci.Build(context.Background(), oci.Contents{Layers: []oci.Layer{{Name: "m", Files: []artifact.File{{Path: "a", Src: filepath.Join(dir, "missing")}}}}}, oci.Options{CacheDir: dir})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing source: got %v", err)
	}
	_, err = oci.Build(context.Background(), oci.Contents{Layers: []oci.Layer{{Name: "m", Files: []artifact.File{{Path: "a", Data: []byte("1")}, {Path: "/a", Data: []byte("2")}}}}}, oci.Options{CacheDir: dir})
	if err == nil || !strings.Contains(err.Error(), "two entries") {
		t.Errorf("duplicate path: got %v", err)
	}
	// The layers are built at once: a failing one is named, the first in
	// layer order when several fail, and a cancelled build stops.
	ok := oci.Layer{Name: "fine", Files: []artifact.File{{Path: "f", Data: bytes.Repeat([]byte("x"), 1<<20)}}}
	bad := func(name string) oci.Layer {
		return oci.Layer{Name: name, Files: []artifact.File{{Path: name, Src: filepath.Join(dir, name+"-missing")}}}
	}
	_, err = oci.Build(context.Background(), oci.Contents{Layers: []oci.Layer{ok, bad("second"), ok, bad("fourth")}}, oci.Options{CacheDir: dir, NoCache: true})
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "second layer: ") {
		t.Errorf("two failing layers: got %v, want the second's error first", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = oci.Build(ctx, oci.Contents{Layers: []oci.Layer{ok}}, oci.Options{CacheDir: dir}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	_, err = oci.Build(context.Background(), oci.Contents{}, oci.Options{CacheDir: dir, Compression: "lz4"})
	if err == nil {
		t.Error("an unknown compression was accepted")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := oci.SourceDateEpoch(); err == nil {
		t.Error("a bad SOURCE_DATE_EPOCH was accepted")
	}
}
