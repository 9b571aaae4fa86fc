package lambdazip

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zip"

	"github.com/cortexfn/cortex/internal/cachetrim"
	"github.com/cortexfn/cortex/packager/artifact"
)

// Lambda's deployment package quotas (AWS documents them in MB; the byte
// values are MiB).
const (
	// MaxZipped is the largest zip a function can be created from directly.
	MaxZipped = 50 << 20
	// MaxUnzipped is the largest a function's code may be once unpacked.
	MaxUnzipped = 250 << 20
)

// Runtime is the Lambda runtime a packaged function runs on, and GLIBC the
// glibc it ships: no file in the zip may need a newer symbol version.
const (
	Runtime = "provided.al2023"
	GLIBC   = "2.34"
)

// ErrTooLarge is wrapped by a *TooLargeError.
var ErrTooLarge = errors.New("lambdazip: too large for a Lambda zip")

// TooLargeError says which Lambda quota a zip would exceed.
type TooLargeError struct {
	// Unzipped is true for the 250 MB unpacked quota, false for the 50 MB
	// zipped one.
	Unzipped    bool
	Size, Limit int64
}

func (e *TooLargeError) Error() string {
	what := "zipped"
	if e.Unzipped {
		what = "unzipped"
	}
	return fmt.Sprintf("the Lambda zip would be %.1f MB %s, over Lambda's %d MB limit: deploy the container image instead (Lambda runs OCI images up to 10 GB: push it with --registry and create the function with PackageType Image)",
		float64(e.Size)/(1<<20), what, e.Limit>>20)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// Info describes a written zip.
type Info struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Unzipped int64  `json:"unzipped"`
	SHA256   string `json:"sha256"`
}

// Options says how a zip is written.
type Options struct {
	// Modified is every entry's modification time (the zip format cannot
	// say anything before 1980, so earlier times become 1980-01-01).
	Modified time.Time
	// CacheDir, when set, keeps the deflated bytes of large files (keyed
	// by their sha256), so an unchanged ONNX Runtime library or model is
	// not compressed again on the next package. The zip's bytes are the
	// same with or without it.
	CacheDir string
}

// Write writes files to a zip at path, reproducibly: entries sorted by
// name, one modification time, no extra fields, Deflate at a fixed level.
// It refuses with a *TooLargeError, and writes nothing, when the files
// exceed Lambda's unzipped quota; and removes the zip when it exceeds the
// zipped one.
func Write(path string, files []artifact.File, o Options) (Info, error) {
	mtime := o.Modified
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b artifact.File) int { return strings.Compare(a.Path, b.Path) })
	var total int64
	sizes := make([]int64, len(files))
	for i, f := range files {
		if i > 0 && files[i-1].Path == f.Path {
			return Info{}, fmt.Errorf("two zip entries named %s", f.Path)
		}
		n, err := f.Size()
		if err != nil {
			return Info{}, err
		}
		sizes[i] = n
		total += n
	}
	if total > MaxUnzipped {
		return Info{}, &TooLargeError{Unzipped: true, Size: total, Limit: MaxUnzipped}
	}
	if o.CacheDir == "" {
		// Large files are always written as raw deflated entries (the
		// same bytes with or without a cache); without one they are
		// deflated into a temporary directory first.
		tmp, err := os.MkdirTemp("", "cortex-zip-")
		if err != nil {
			return Info{}, err
		}
		defer os.RemoveAll(tmp)
		o.CacheDir = tmp
	}
	out, err := os.Create(path)
	if err != nil {
		return Info{}, err
	}
	ok := false
	defer func() {
		out.Close()
		if !ok {
			os.Remove(path)
		}
	}()
	h := sha256.New()
	cw := &counter{w: io.MultiWriter(out, h)}
	zw := zip.NewWriter(cw)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.DefaultCompression)
	})
	date, tm := dosTime(mtime)
	for i, f := range files {
		fh := &zip.FileHeader{Name: f.Path, Method: zip.Deflate, ModifiedDate: date, ModifiedTime: tm}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		fh.SetMode(mode.Perm())
		if f.Src != "" || f.Opened != nil {
			if done, err := writeCached(zw, fh, f, sizes[i], o.CacheDir); err != nil {
				return Info{}, err
			} else if done {
				continue
			}
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return Info{}, err
		}
		if err := f.Copy(w, sizes[i]); err != nil {
			return Info{}, err
		}
	}
	if err := zw.Close(); err != nil {
		return Info{}, err
	}
	if err := out.Close(); err != nil {
		return Info{}, err
	}
	if cw.n > MaxZipped {
		return Info{}, &TooLargeError{Size: cw.n, Limit: MaxZipped}
	}
	ok = true
	return Info{Path: path, Size: cw.n, Unzipped: total, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// dosTime encodes t (UTC) as MS-DOS date and time fields.
func dosTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	tm = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return date, tm
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// GLIBCNeeded returns the newest GLIBC_x.y symbol version the ELF file at
// path needs ("" for a static binary or one that needs none).
func GLIBCNeeded(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if errors.Is(err, elf.ErrNoSymbols) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	best := ""
	for _, s := range syms {
		if s.Section != elf.SHN_UNDEF {
			continue
		}
		if v, ok := strings.CutPrefix(s.Version, "GLIBC_"); ok && versionLess(best, v) {
			best = v
		}
	}
	return best, nil
}

// versionLess compares dotted versions ("2.34" < "2.36"); "" is least.
func versionLess(a, b string) bool {
	if a == "" {
		return b != ""
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// NewerThanLambda reports whether the ELF file needs a glibc newer than
// Lambda's (GLIBC), and which.
func NewerThanLambda(path string) (need string, newer bool, err error) {
	need, err = GLIBCNeeded(path)
	if err != nil {
		return "", false, err
	}
	return need, versionLess(GLIBC, need), nil
}

// cacheMin is the smallest file whose deflated bytes are cached.
const cacheMin = 1 << 20

// The deflated files' cache is trimmed as the go command trims its build
// cache (internal/cachetrim): entries unused for five days go, then the
// least recently used while it holds more than $CORTEX_PACKAGE_CACHE_MAX
// bytes (default 16 GiB). A hit marks its entry used. Before it the cache
// kept a deflated copy of every model and library a zip ever held.
var cachePolicy = cachetrim.Packaged()

// TrimCache trims the deflated files' cache under cacheDir
// (Options.CacheDir). The packager calls it once a package is written, as
// the go command trims its cache on exit.
func TrimCache(cacheDir string) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "zip", "deflate-*"))
	now := time.Now()
	for _, dir := range dirs {
		cachePolicy.Trim(dir, now)
	}
}

type deflated struct {
	CRC32        uint32 `json:"crc32"`
	Size         uint64 `json:"size"`
	Compressed   uint64 `json:"compressed"`
	Deflate      string `json:"deflate"`
	SourceSHA256 string `json:"source_sha256"`
}

// writeCached writes src as a raw, already deflated entry, deflating it
// into the cache first when the cache does not have it. It reports false
// for small files, which are simply compressed in place.
func writeCached(zw *zip.Writer, fh *zip.FileHeader, f artifact.File, size int64, cacheDir string) (bool, error) {
	if size < cacheMin {
		return false, nil
	}
	in, err := f.Open()
	if err != nil {
		return false, err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return false, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(cacheDir, "zip", fmt.Sprintf("deflate-%d", flate.DefaultCompression))
	blob, meta := filepath.Join(dir, sum+".deflate"), filepath.Join(dir, sum+".json")
	var d deflated
	b, err := os.ReadFile(meta)
	if err != nil || json.Unmarshal(b, &d) != nil || d.SourceSHA256 != sum {
		if d, err = deflateInto(in, dir, blob, meta, sum); err != nil {
			return false, err
		}
	} else {
		cachePolicy.Touch(meta, time.Now())
	}
	raw, err := os.Open(blob)
	if err != nil {
		return false, err
	}
	defer raw.Close()
	if st, err := raw.Stat(); err != nil || uint64(st.Size()) != d.Compressed {
		return false, fmt.Errorf("zip cache entry %s is damaged: remove it", blob)
	}
	fh.CRC32, fh.UncompressedSize64, fh.CompressedSize64 = d.CRC32, d.Size, d.Compressed
	w, err := zw.CreateRaw(fh)
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(w, raw); err != nil {
		return false, err
	}
	return true, nil
}

func deflateInto(in io.ReadSeeker, dir, blob, meta, sum string) (deflated, error) {
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return deflated{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return deflated{}, err
	}
	tmp, err := os.CreateTemp(dir, sum+".tmp-*")
	if err != nil {
		return deflated{}, err
	}
	defer os.Remove(tmp.Name())
	c := &counter{w: tmp}
	fw, err := flate.NewWriter(c, flate.DefaultCompression)
	if err != nil {
		tmp.Close()
		return deflated{}, err
	}
	crc := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(fw, crc), in)
	if err == nil {
		err = fw.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return deflated{}, err
	}
	d := deflated{CRC32: crc.Sum32(), Size: uint64(n), Compressed: uint64(c.n), Deflate: "klauspost/compress flate default", SourceSHA256: sum}
	if err := os.Rename(tmp.Name(), blob); err != nil {
		return deflated{}, err
	}
	b, _ := json.Marshal(d)
	mt, err := os.CreateTemp(dir, sum+".json.tmp-*")
	if err != nil {
		return deflated{}, err
	}
	defer os.Remove(mt.Name())
	if _, err := mt.Write(b); err != nil {
		mt.Close()
		return deflated{}, err
	}
	if err := mt.Close(); err != nil {
		return deflated{}, err
	}
	return d, os.Rename(mt.Name(), meta)
}
