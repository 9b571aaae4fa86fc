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

// buildStats says how a layer was built.
type buildStats struct {
	// cached: the compressed blob came from the cache.
	cached bool
	// read is how many tar bytes were streamed from the files: 0 when the
	// cache knew the files by their path, size and times.
	read int64
}

// build writes files as a layer, taking it from the cache when it is
// there (unless noCache). Memory use does not depend on the size of the
// files: every pass streams.
//
// First the layer's files are looked up by what the file system says of
// them (statKey): an unchanged model of several GB is then not read at
// all. Otherwise a Fast layer (model weights: barely compressible, so
// compressing costs little and reading costs most) is read once, hashed
// and compressed in the same pass; any other layer is hashed first and
// compressed only when the cache has no blob for its diffID (compressing
// code at the default level costs more than reading it twice).
func (b *layerBuilder) build(files []artifact.File, level Level) (l *blobLayer, st buildStats, err error) {
	files, err = normalize(files)
	if err != nil {
		return nil, st, err
	}
	dir := filepath.Join(b.dir, fmt.Sprintf("%s-%d", b.compression, level))
	key, keyed := b.statKey(files, level)
	if !b.noCache && keyed {
		if l, ok := b.byStat(dir, key); ok {
			return l, buildStats{cached: true}, nil
		}
	}
	defer func() {
		if err == nil && keyed {
			// Best effort: without the entry the next build reads the
			// files again, nothing worse.
			b.remember(dir, key, l)
		}
	}()
	if level == Fast {
		l, st.read, err = b.stream(files, level, dir)
		if err == nil && keyed {
			// One pass cannot compare two hashes of the files, as the
			// two passes below do; what the file system says of them can.
			if again, _ := b.statKey(files, level); again != key {
				return nil, st, errors.New("a file changed while it was being packaged: package again")
			}
		}
		return l, st, err
	}
	counter := &countWriter{w: sha256.New()}
	if err := writeTar(counter, files, b.mtime); err != nil {
		return nil, st, err
	}
	diffID := sum(counter.w.(hash.Hash))
	st.read = counter.n
	blob := filepath.Join(dir, diffID.Hex+".blob")
	meta := filepath.Join(dir, diffID.Hex+".json")
	if !b.noCache {
		if l, ok := b.cached(blob, meta, diffID); ok {
			st.cached = true
			return l, st, nil
		}
	}
	l, n, err := b.compress(files, level, diffID, dir, blob, meta)
	st.read += n
	return l, st, err
}

// stream writes the normalized files as a compressed layer into the cache
// in one pass: the tar is hashed (its diffID) and compressed as it is
// read, and the compressed bytes are hashed (the digest) as they are
// written, so each byte of the files is read once.
func (b *layerBuilder) stream(files []artifact.File, level Level, dir string) (*blobLayer, int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, fmt.Errorf("creating the layer cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "stream.tmp-*")
	if err != nil {
		return nil, 0, fmt.Errorf("creating the layer cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	// tar -> [sha256 (diffID) | compress -> [file | sha256 (digest)]],
	// in 1 MB chunks, each hash on a goroutine of its own.
	digest := sha256.New()
	counter := &countWriter{w: fanout{digest, tmp}}
	compressed := chunked(counter)
	zw, err := b.compression.compressor(compressed, level)
	if err != nil {
		tmp.Close()
		return nil, 0, err
	}
	diff := sha256.New()
	read := &countWriter{w: fanout{diff, zw}}
	tarred := chunked(read)
	err = writeTar(tarred, files, b.mtime)
	if err == nil {
		err = tarred.Flush()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = compressed.Flush()
	}
	if err != nil {
		tmp.Close()
		return nil, read.n, err
	}
	if err := tmp.Close(); err != nil {
		return nil, read.n, err
	}
	diffID := sum(diff)
	blob := filepath.Join(dir, diffID.Hex+".blob")
	l := &blobLayer{path: blob, diffID: diffID, digest: sum(digest), size: counter.n, compression: b.compression}
	// Read-only: the layout hard-links it (linkBlobs).
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return nil, read.n, err
	}
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return nil, read.n, err
	}
	m, _ := json.Marshal(cacheEntry{Digest: l.digest.String(), Size: l.size})
	if err := writeFileAtomic(filepath.Join(dir, diffID.Hex+".json"), m); err != nil {
		return nil, read.n, err
	}
	return l, read.n, nil
}

// compress writes the normalized files as a compressed layer into the
// cache, checking that the tar still hashes to diffID.
func (b *layerBuilder) compress(files []artifact.File, level Level, diffID v1.Hash, dir, blob, meta string) (*blobLayer, int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, fmt.Errorf("creating the layer cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, diffID.Hex+".tmp-*")
	if err != nil {
		return nil, 0, fmt.Errorf("creating the layer cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	digest := sha256.New()
	counter := &countWriter{w: io.MultiWriter(tmp, digest)}
	zw, err := b.compression.compressor(counter, level)
	if err != nil {
		tmp.Close()
		return nil, 0, err
	}
	again := sha256.New()
	read := &countWriter{w: io.MultiWriter(zw, again)}
	if err := writeTar(read, files, b.mtime); err != nil {
		tmp.Close()
		return nil, read.n, err
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return nil, read.n, err
	}
	if err := tmp.Close(); err != nil {
		return nil, read.n, err
	}
	if got := sum(again); got != diffID {
		return nil, read.n, errors.New("a file changed while it was being packaged: package again")
	}
	l := &blobLayer{path: blob, diffID: diffID, digest: sum(digest), size: counter.n, compression: b.compression}
	// Read-only: the layout hard-links it (linkBlobs).
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return nil, read.n, err
	}
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return nil, read.n, err
	}
	m, _ := json.Marshal(cacheEntry{Digest: l.digest.String(), Size: l.size})
	if err := writeFileAtomic(meta, m); err != nil {
		return nil, read.n, err
	}
	return l, read.n, nil
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
