// Package oci fetches models named oci://REGISTRY/REPO:TAG or
// oci://REGISTRY/REPO@sha256:DIGEST: an image whose layers hold the model
// under /models (KServe ModelCar's layout, and what cortex package
// --push-model pushes). Everything under /models becomes one entry of the
// model cache, keyed by the image manifest's digest.
//
// Registry credentials come from the Docker config (~/.docker/config.json
// and its credential helpers: authn.DefaultKeychain), as for docker pull.
// Importing this package registers the oci scheme with modelfetch; the
// generated main of a function imports it only when the function names an
// oci:// model, because it links go-containerregistry (ARCHITECTURE.md,
// Rationale).
package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/klauspost/compress/zstd"

	"github.com/cortexfn/cortex/runtime/modelfetch"
)

func init() { modelfetch.Register("oci", Fetcher{Keychain: authn.DefaultKeychain}) }

// ModelsDir is where an image keeps its model: /models, as KServe's
// ModelCar mounts it.
const ModelsDir = "models"

// Fetcher fetches oci:// models.
type Fetcher struct {
	// Keychain finds the registry's credentials.
	Keychain authn.Keychain
}

// Fetch resolves the reference to its manifest's digest and, unless the
// cache has it, downloads the image's layers (each checked against its
// digest, large ones in parallel ranges) and unpacks what they hold under
// /models.
func (f Fetcher) Fetch(ctx context.Context, c *modelfetch.Cache, r modelfetch.Ref) (string, error) {
	ref, err := name.ParseReference(r.Rest)
	if err != nil {
		return "", err
	}
	base := c.HTTPClient().Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(f.Keychain), remote.WithTransport(base)}
	// A digest names its entry: a cached model needs no registry at all.
	var digest v1.Hash
	if d, ok := ref.(name.Digest); ok {
		if digest, err = v1.NewHash(d.DigestStr()); err != nil {
			return "", err
		}
	} else {
		desc, err := remote.Head(ref, opts...)
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", ref, err)
		}
		digest = desc.Digest
	}
	if digest.Algorithm != "sha256" {
		return "", fmt.Errorf("manifest digest %s is not sha256", digest)
	}
	key := "oci/sha256/" + digest.Hex
	if dir, ok := c.Complete(key); ok {
		return dir, nil
	}
	dir, _, err := c.Entry(ctx, key, func(ctx context.Context, staging string) error {
		// By digest, so the image is the one just resolved even when its
		// tag moves meanwhile; remote checks the manifest against it.
		desc, err := remote.Get(ref.Context().Digest(digest.String()), opts...)
		if err != nil {
			return err
		}
		img, err := image(desc)
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		auth, err := f.Keychain.Resolve(ref.Context())
		if err != nil {
			return err
		}
		tr, err := transport.NewWithContext(ctx, ref.Context().Registry, auth, base, []string{ref.Context().Scope(transport.PullScope)})
		if err != nil {
			return err
		}
		client := &http.Client{Transport: tr}
		files := 0
		for i, l := range layers {
			ld, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", ref.Context().Scheme(), ref.Context().RegistryStr(), ref.Context().RepositoryStr(), ld)
			src := modelfetch.Source{Ref: r.Raw, URL: u, Client: client, SHA256: ld.Hex, Size: size}
			if !c.Ranged(size) {
				// Unpacked as it arrives and hashed on the way: the
				// layer is never on disk whole.
				var n int
				if _, _, err := c.Stream(ctx, src, func(body io.Reader) (err error) {
					n, err = unpackStream(body, staging)
					return err
				}); err != nil {
					return fmt.Errorf("layer %s: %w", ld, err)
				}
				files += n
				continue
			}
			// A large layer: in parallel ranges, its big file straight
			// into place when the layout allows, else whole into a file
			// that is then unpacked.
			n, ok, err := inPlace(ctx, c, src, staging)
			if err != nil {
				return fmt.Errorf("layer %s: %w", ld, err)
			}
			if ok {
				files += n
				continue
			}
			blob := filepath.Join(staging, fmt.Sprintf(".layer-%d", i))
			if _, _, err := c.Download(ctx, src, blob); err != nil {
				return fmt.Errorf("layer %s: %w", ld, err)
			}
			if n, err = unpackFile(blob, staging); err != nil {
				return fmt.Errorf("layer %s: %w", ld, err)
			}
			files += n
			if err := os.Remove(blob); err != nil {
				return err
			}
		}
		if files == 0 {
			return fmt.Errorf("the image holds no files under /%s: put the model there (KServe ModelCar's layout), or push it with cortex package --push-model", ModelsDir)
		}
		return nil
	})
	return dir, err
}

// image is the image a descriptor names; of an index, the first image
// (a model is the same for every platform).
func image(desc *remote.Descriptor) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		return desc.Image()
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.MediaType.IsImage() {
			return idx.Image(d.Digest)
		}
	}
	return nil, errors.New("the image index holds no image")
}

// Bounds of inPlace: how much of a layer is read to find its big file,
// and how much may follow that file.
const (
	headSize = 64 << 10
	maxTail  = 1 << 20
)

// inPlace fetches a large uncompressed layer whose bytes are mostly one
// file under /models, as a model's weights are pushed: it reads the
// layer's first 64 KiB for the file's tar header, fetches the file's
// bytes in parallel ranges straight to where the file goes (no copy of
// the layer, no second write), and the few bytes after it. Then it reads
// the layer as a whole once, the file from disk and the rest from
// memory, to check its digest and unpack whatever else is under /models.
// ok is false, with nothing fetched but the head, when the layer is not
// laid out so (compressed, several large files, a server without
// ranges).
func inPlace(ctx context.Context, c *modelfetch.Cache, src modelfetch.Source, dir string) (n int, ok bool, err error) {
	total := src.Size
	head, err := c.ReadRange(ctx, src, 0, min(headSize, total))
	if errors.Is(err, modelfetch.ErrNoRanges) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) || bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return 0, false, nil
	}
	// Find the first entry whose bytes run past the head.
	hr := &offsetReader{r: bytes.NewReader(head)}
	tr := tar.NewReader(hr)
	var big *tar.Header
	var dataOff int64
	for {
		h, err := tr.Next()
		if err != nil {
			return 0, false, nil // the head ends inside a header, or no large file
		}
		if hr.off+h.Size > int64(len(head)) {
			big, dataOff = h, hr.off
			break
		}
	}
	rel, under := underModels(big.Name)
	bigEnd := dataOff + big.Size
	if big.Typeflag != tar.TypeReg || !under || strings.HasPrefix(path.Base(rel), ".wh.") || bigEnd > total || total-bigEnd > maxTail {
		return 0, false, nil
	}
	tail, err := c.ReadRange(ctx, src, bigEnd, total-bigEnd)
	if err != nil {
		return 0, false, err
	}
	target := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return 0, false, err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	inHead := int64(len(head)) - dataOff
	if _, err := f.WriteAt(head[dataOff:], 0); err != nil {
		return 0, false, err
	}
	if err := c.DownloadRange(ctx, src, int64(len(head)), bigEnd, f, inHead); err != nil {
		return 0, false, err
	}
	// The layer once, in order, through the digest: the other entries are
	// unpacked from it, the big file's bytes only hashed.
	h := sha256.New()
	layer := io.TeeReader(io.MultiReader(bytes.NewReader(head), io.NewSectionReader(f, inHead, big.Size-inHead), bytes.NewReader(tail)), h)
	lr := &offsetReader{r: layer}
	n, err = extract(tar.NewReader(lr), dir, func(hd *tar.Header) bool {
		return hd.Name == big.Name && lr.off == dataOff
	})
	_, rerr := io.Copy(io.Discard, layer)
	if got := hex.EncodeToString(h.Sum(nil)); rerr == nil && got != src.SHA256 {
		return 0, false, &modelfetch.DigestError{Ref: src.Ref, Want: src.SHA256, Got: got}
	}
	if err := errors.Join(err, rerr); err != nil {
		return 0, false, err
	}
	return n + 1, true, nil
}

// offsetReader counts what archive/tar has read: after Next, off is
// where the entry's bytes start.
type offsetReader struct {
	r   io.Reader
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.off += int64(n)
	return n, err
}

// decompress returns the tar stream of a layer: gunzipped, zstd-decoded
// or as it is, by its first bytes (as go-containerregistry does; the
// media type is not always honest).
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// unpackStream writes the files of a layer under /models into dir as the
// layer arrives, and returns how many it wrote.
func unpackStream(r io.Reader, dir string) (int, error) {
	tr, done, err := decompress(r)
	if err != nil {
		return 0, err
	}
	defer done()
	return extract(tar.NewReader(tr), dir, nil)
}

// unpackFile is unpackStream for a layer downloaded whole (in ranges).
// An uncompressed one (large weights do not compress) is read in place:
// each file's bytes are copied from the blob by the kernel
// (copy_file_range), and tar skips them by seeking.
func unpackFile(blob, dir string) (int, error) {
	f, err := os.Open(blob)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var magic [4]byte
	io.ReadFull(f, magic[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if bytes.HasPrefix(magic[:], []byte{0x1f, 0x8b}) || bytes.Equal(magic[:], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return unpackStream(f, dir)
	}
	src := &offsetFile{f: f}
	return extractFrom(tar.NewReader(src), dir, func(size int64) io.Reader {
		in, err := os.Open(blob)
		if err != nil {
			return errReader{err}
		}
		if _, err := in.Seek(src.off, io.SeekStart); err != nil {
			in.Close()
			return errReader{err}
		}
		return &closingLimitedReader{LimitedReader: io.LimitedReader{R: in, N: size}, f: in}
	}, nil)
}

// extract writes the entries of tr under /models into dir, following
// whiteouts, and returns how many files it wrote; skip, when not nil,
// names entries to leave out (inPlace's big file, already in place).
func extract(tr *tar.Reader, dir string, skip func(*tar.Header) bool) (int, error) {
	return extractFrom(tr, dir, nil, skip)
}

// extractFrom is extract where fromBlob, when not nil, gives a file's
// bytes from elsewhere than tr (unpackFile's blob).
func extractFrom(tr *tar.Reader, dir string, fromBlob func(size int64) io.Reader, skip func(*tar.Header) bool) (int, error) {
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		rel, ok := underModels(h.Name)
		if !ok || (skip != nil && skip(h)) {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		base := path.Base(rel)
		if strings.HasPrefix(base, ".wh.") { // a file an upper layer deletes
			os.RemoveAll(filepath.Join(filepath.Dir(target), strings.TrimPrefix(base, ".wh.")))
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return n, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return n, err
			}
			var r io.Reader = tr
			if fromBlob != nil {
				r = fromBlob(h.Size)
			}
			err := writeFile(target, r, h.Size)
			if c, ok := r.(io.Closer); ok {
				c.Close()
			}
			if err != nil {
				return n, err
			}
			n++
		default:
			// Links and devices: a model is regular files; a link could
			// point out of the cache.
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// closingLimitedReader is an *io.LimitedReader of a file (which
// *os.File.ReadFrom copies in the kernel) that closes the file.
type closingLimitedReader struct {
	io.LimitedReader
	f *os.File
}

func (c *closingLimitedReader) Close() error { return c.f.Close() }

// underModels returns name's path below models/, and whether it is
// there and stays there.
func underModels(name string) (string, bool) {
	p := path.Clean("/" + name)
	rel, ok := strings.CutPrefix(p, "/"+ModelsDir+"/")
	if !ok || rel == "" {
		return "", false
	}
	return rel, true
}

// writeFile writes the size bytes of r to a new file at path. From a
// file (unpackFile), *os.File.ReadFrom copies in the kernel.
func writeFile(path string, r io.Reader, size int64) error {
	os.Remove(path) // a lower layer's copy
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	var n int64
	if c, ok := r.(*closingLimitedReader); ok {
		n, err = f.ReadFrom(&c.LimitedReader)
	} else {
		b := make([]byte, 1<<20)
		n, err = io.CopyBuffer(modelfetch.WriteBack(f, 0), r, b)
	}
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	return errors.Join(err, f.Close())
}

// offsetFile is a blob read by archive/tar, which seeks past file data
// (io.Seeker) rather than reading it; off is where the data of the entry
// Next just returned starts.
type offsetFile struct {
	f   *os.File
	off int64
}

func (o *offsetFile) Read(p []byte) (int, error) {
	n, err := o.f.Read(p)
	o.off += int64(n)
	return n, err
}

func (o *offsetFile) Seek(offset int64, whence int) (int64, error) {
	pos, err := o.f.Seek(offset, whence)
	if err == nil {
		o.off = pos
	}
	return pos, err
}

var _ modelfetch.Fetcher = Fetcher{}
