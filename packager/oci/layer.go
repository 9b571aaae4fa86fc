package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/cortexfn/cortex/packager/artifact"
)

// Compression is how layers are compressed.
type Compression string

const (
	// Gzip is the default: every runtime and registry reads it, and Lambda
	// container images require it.
	Gzip Compression = "gzip"
	// Zstd gives smaller layers that decompress several times faster
	// (containerd >= 1.5, Docker >= 23); the OCI zstd media type.
	Zstd Compression = "zstd"
)

// Level trades size for speed.
type Level int

const (
	// Default suits code and libraries.
	Default Level = iota
	// Fast suits model weights, which barely compress: they are compressed
	// at the fastest level, so a multi-GB model costs seconds, not minutes.
	Fast
)

func (c Compression) mediaType() types.MediaType {
	if c == Zstd {
		return types.OCILayerZStd
	}
	return types.OCILayer
}

// compressor returns a writer that compresses into w. The settings are
// fixed (single-threaded, fixed level) so the same input gives the same
// bytes with the same klauspost/compress version.
func (c Compression) compressor(w io.Writer, l Level) (io.WriteCloser, error) {
	switch c {
	case Zstd:
		level := zstd.SpeedDefault
		if l == Fast {
			level = zstd.SpeedFastest
		}
		return zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	case Gzip, "":
		level := gzip.DefaultCompression
		if l == Fast {
			level = gzip.BestSpeed
		}
		return gzip.NewWriterLevel(w, level)
	}
	return nil, fmt.Errorf("unknown compression %q: use gzip or zstd", c)
}

func (c Compression) decompressor(r io.Reader) (io.ReadCloser, error) {
	if c == Zstd {
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return gzip.NewReader(r)
}

// blobLayer is a layer whose compressed bytes are a file on disk: written
// once, streamed from there by every sink (layout, tarball, registry). Its
// digests are known without reading it again.
type blobLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	compression    Compression
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *blobLayer) Size() (int64, error)                { return l.size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.compression.mediaType(), nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	d, err := l.compression.decompressor(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &closeBoth{ReadCloser: d, f: f}, nil
}

type closeBoth struct {
	io.ReadCloser
	f *os.File
}

func (c *closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if ferr := c.f.Close(); err == nil {
		err = ferr
	}
	return err
}

// layerBuilder writes layers into a content-addressed cache. A layer is
// keyed by its diffID (the sha256 of its uncompressed tar) and how it is
// compressed, so an unchanged model is hashed (fast) but not compressed
// again (slow) on the next build.
type layerBuilder struct {
	dir         string // cache directory for compressed blobs
	compression Compression
	mtime       time.Time
	noCache     bool
}

type cacheEntry struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// build writes files as a layer, taking it from the cache when it is
// there (unless noCache). The tar is streamed twice when the layer is not
// cached: once to hash it (its diffID is the cache key), once to compress
// it; memory use does not depend on the size of the files.
func (b *layerBuilder) build(files []artifact.File, level Level) (l *blobLayer, cached bool, err error) {
	files, err = normalize(files)
	if err != nil {
		return nil, false, err
	}
	diffID, err := b.hashTar(files)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Join(b.dir, fmt.Sprintf("%s-%d", b.compression, level))
	blob := filepath.Join(dir, diffID.Hex+".blob")
	meta := filepath.Join(dir, diffID.Hex+".json")
	if !b.noCache {
		if l, ok := b.cached(blob, meta, diffID); ok {
			return l, true, nil
		}
	}
	l, err = b.compress(files, level, diffID, dir, blob, meta)
	return l, false, err
}

// compress writes the normalized files as a compressed layer into the
// cache, checking that the tar still hashes to diffID.
func (b *layerBuilder) compress(files []artifact.File, level Level, diffID v1.Hash, dir, blob, meta string) (*blobLayer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the layer cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, diffID.Hex+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating the layer cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	digest := sha256.New()
	counter := &countWriter{w: io.MultiWriter(tmp, digest)}
	zw, err := b.compression.compressor(counter, level)
	if err != nil {
		tmp.Close()
		return nil, err
	}
	again := sha256.New()
	if err := writeTar(io.MultiWriter(zw, again), files, b.mtime); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if got := sum(again); got != diffID {
		return nil, errors.New("a file changed while it was being packaged: package again")
	}
	l := &blobLayer{path: blob, diffID: diffID, digest: sum(digest), size: counter.n, compression: b.compression}
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return nil, err
	}
	m, _ := json.Marshal(cacheEntry{Digest: l.digest.String(), Size: l.size})
	if err := writeFileAtomic(meta, m); err != nil {
		return nil, err
	}
	return l, nil
}

func (b *layerBuilder) cached(blob, meta string, diffID v1.Hash) (*blobLayer, bool) {
	m, err := os.ReadFile(meta)
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if json.Unmarshal(m, &e) != nil {
		return nil, false
	}
	d, err := v1.NewHash(e.Digest)
	if err != nil {
		return nil, false
	}
	if st, err := os.Stat(blob); err != nil || st.Size() != e.Size {
		return nil, false
	}
	return &blobLayer{path: blob, diffID: diffID, digest: d, size: e.Size, compression: b.compression}, true
}

func (b *layerBuilder) hashTar(files []artifact.File) (v1.Hash, error) {
	h := sha256.New()
	if err := writeTar(h, files, b.mtime); err != nil {
		return v1.Hash{}, err
	}
	return sum(h), nil
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

var _ v1.Layer = (*blobLayer)(nil)
