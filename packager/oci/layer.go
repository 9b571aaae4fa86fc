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
	// uncompressed layers (application/vnd.oci.image.layer.v1.tar) are
	// not offered: Lambda refuses them. The benchmark measures them.
	uncompressed Compression = "none"
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
	switch c {
	case Zstd:
		return types.OCILayerZStd
	case uncompressed:
		return types.OCIUncompressedLayer
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
	case uncompressed:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q: use gzip or zstd", c)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func (c Compression) decompressor(r io.Reader) (io.ReadCloser, error) {
	if c == uncompressed {
		return io.NopCloser(r), nil
	}
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
		var sums fileSums
		l, st.read, sums, err = b.stream(files, level, dir)
		if err == nil && keyed {
			// One pass cannot compare two hashes of the files, as the
			// two passes below do; what the file system says of them can.
			if again, _ := b.statKey(files, level); again != key {
				return nil, st, errors.New("a file changed while it was being packaged: package again")
			}
			b.rememberFiles(sums.keys, sums.sums)
		}
		return l, st, err
	}
	// The hashing pass hashes each file too (the runtime library, the
	// stages), for FileDigest: these layers are small beside a model.
	sums := fileSums{keys: make([]string, len(files)), sums: make([]string, len(files))}
	hashes := make([]hash.Hash, len(files))
	counter := &countWriter{w: sha256.New()}
	err = writeTar(counter, files, b.mtime, func(i int) io.Writer {
		key, ok := fileKey(files[i])
		if !ok {
			return nil
		}
		sums.keys[i], hashes[i] = key, sha256.New()
		return hashes[i]
	})
	if err != nil {
		return nil, st, err
	}
	for i, h := range hashes {
		if h != nil {
			sums.sums[i] = hex.EncodeToString(h.Sum(nil))
		}
	}
	diffID := sum(counter.w.(hash.Hash))
	st.read = counter.n
	blob := filepath.Join(dir, diffID.Hex+".blob")
	meta := filepath.Join(dir, diffID.Hex+".json")
	if !b.noCache {
		if l, ok := b.cached(blob, meta, diffID); ok {
			st.cached = true
			b.rememberFiles(sums.keys, sums.sums)
			return l, st, nil
		}
	}
	l, n, err := b.compress(files, level, diffID, dir, blob, meta)
	st.read += n
	if err == nil {
		// compress read the files again to the same diffID: they held
		// still.
		b.rememberFiles(sums.keys, sums.sums)
	}
	return l, st, err
}

// fileSums are the SHA-256 (hex) of the files of a layer that stream
// read, with each file's fileKey as it was before it was read; "" for
// entries that are not such files.
type fileSums struct{ keys, sums []string }

// stream writes the normalized files as a compressed layer into the cache
// in one pass: the tar is hashed (its diffID) and compressed as it is
// read, the compressed bytes are hashed (the digest) as they are written,
// and each file's own bytes are hashed (for the SBOM: FileDigest), so each
// byte of the files is read once. Every hash runs on a goroutine of its
// own (asyncWriter): the pass itself reads, compresses and writes.
func (b *layerBuilder) stream(files []artifact.File, level Level, dir string) (*blobLayer, int64, fileSums, error) {
	fs := fileSums{keys: make([]string, len(files)), sums: make([]string, len(files))}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, fs, fmt.Errorf("creating the layer cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "stream.tmp-*")
	if err != nil {
		return nil, 0, fs, fmt.Errorf("creating the layer cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	var hashers []*asyncWriter
	async := func(h hash.Hash) *asyncWriter {
		a := newAsyncWriter(h)
		hashers = append(hashers, a)
		return a
	}
	defer func() {
		for _, a := range hashers {
			a.Close() // ends its goroutine on every path
		}
	}()
	// tar -> [sha256 (diffID)] and compress -> file and [sha256 (digest)];
	// each file's bytes -> [sha256]. An uncompressed layer's digest is its
	// diffID: one hash fewer.
	diff := sha256.New()
	digest := diff
	counter := &countWriter{w: tmp}
	if b.compression != uncompressed {
		digest = sha256.New()
		counter.w = io.MultiWriter(tmp, async(digest))
	}
	compressed := chunked(counter)
	zw, err := b.compression.compressor(compressed, level)
	if err != nil {
		tmp.Close()
		return nil, 0, fs, err
	}
	read := &countWriter{w: io.MultiWriter(async(diff), zw)}
	tarred := chunked(read)
	cur, curFile := (*asyncWriter)(nil), -1
	var curHash hash.Hash
	finish := func() error {
		if cur == nil {
			return nil
		}
		err := cur.Close()
		fs.sums[curFile] = hex.EncodeToString(curHash.Sum(nil))
		cur = nil
		return err
	}
	tee := func(i int) io.Writer {
		finish()
		key, ok := fileKey(files[i])
		if !ok {
			return nil
		}
		fs.keys[i], curFile, curHash = key, i, sha256.New()
		cur = async(curHash)
		return cur
	}
	err = writeTar(tarred, files, b.mtime, tee)
	if err == nil {
		err = tarred.Flush()
	}
	if err == nil {
		err = finish()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = compressed.Flush()
	}
	for _, a := range hashers {
		if cerr := a.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		tmp.Close()
		return nil, read.n, fs, err
	}
	if err := tmp.Close(); err != nil {
		return nil, read.n, fs, err
	}
	diffID := sum(diff)
	blob := filepath.Join(dir, diffID.Hex+".blob")
	l := &blobLayer{path: blob, diffID: diffID, digest: sum(digest), size: counter.n, compression: b.compression}
	// Read-only: the layout hard-links it (linkBlobs).
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return nil, read.n, fs, err
	}
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return nil, read.n, fs, err
	}
	m, _ := json.Marshal(cacheEntry{Digest: l.digest.String(), Size: l.size})
	if err := writeFileAtomic(filepath.Join(dir, diffID.Hex+".json"), m); err != nil {
		return nil, read.n, fs, err
	}
	return l, read.n, fs, nil
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
	if err := writeTar(read, files, b.mtime, nil); err != nil {
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
	cachePolicy.Touch(meta, time.Now())
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
