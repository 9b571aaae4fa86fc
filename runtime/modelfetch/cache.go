package modelfetch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Marker is the file an entry's directory holds once it is complete. It is
// written last; a directory without it is never used.
const Marker = ".cortex-complete"

// Cache is the machine's model cache: a directory of complete entries,
// each keyed by a digest, shared by every process that opens the same
// directory. Its methods are safe for concurrent use, by goroutines and by
// processes.
type Cache struct {
	dir    string
	client *http.Client
	log    *slog.Logger
	every  time.Duration
	// ranges is the smallest blob fetched in parallel ranges, and
	// minPart the smallest range.
	ranges, minPart int64
	maxParts        int
	// slowRate (bytes/s) and probe: a blob of ranges bytes or more
	// starts as one request and is cut into ranges only when, after
	// probe, it arrives slower than slowRate (split.go). slowRate 0 asks
	// for ranges from the first request.
	slowRate int64
	probe    time.Duration
}

// Option configures a Cache.
type Option func(*Cache)

// WithDir puts the cache in dir instead of DefaultDir's.
func WithDir(dir string) Option { return func(c *Cache) { c.dir = dir } }

// WithHTTPClient sets the client https:// models are fetched with
// (default http.DefaultClient, which trusts the system's roots and
// $SSL_CERT_FILE).
func WithHTTPClient(h *http.Client) Option { return func(c *Cache) { c.client = h } }

// WithLogger sets where progress and results are logged (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Cache) { c.log = l } }

// WithProgressInterval sets how often a running fetch logs its progress
// (default 5s).
func WithProgressInterval(d time.Duration) Option { return func(c *Cache) { c.every = d } }

// WithRanges fetches a blob of at least min bytes in parallel HTTP range
// requests of at least part bytes each, at most maxParts at once, from
// the first request on, when the server takes ranges. min <= 0 turns
// ranges off. Without it (or with WithRangesWhenSlow after it), a blob of
// 64 MiB or more is cut into ranges of at least 16 MiB, at most 8, only
// when one request brings it slowly (WithRangesWhenSlow).
func WithRanges(min, part int64, maxParts int) Option {
	return func(c *Cache) { c.ranges, c.minPart, c.maxParts, c.slowRate = min, part, maxParts, 0 }
}

// WithRangesWhenSlow starts every blob as one request, hashed and written
// as it arrives, and fetches the rest of a large one in parallel ranges
// only when, after probe, that request brings it slower than rate bytes
// per second (default DefaultSlowRate after DefaultProbe): parallel
// connections pay where one is slow (object stores, registry CDNs), and
// cost where one is fast. rate <= 0 asks for ranges from the first
// request, as WithRanges does.
func WithRangesWhenSlow(rate int64, probe time.Duration) Option {
	return func(c *Cache) { c.slowRate, c.probe = rate, probe }
}

// Defaults of a Cache.
const (
	DefaultRangesMin = 64 << 20
	DefaultMinPart   = 16 << 20
	DefaultMaxParts  = 8
	// DefaultSlowRate is a gigabit link's worth (128 MiB/s): a connection
	// slower than that leaves a machine's disk and hashing idle, and
	// object stores give each connection about that or less.
	DefaultSlowRate = 128 << 20
	DefaultProbe    = time.Second
)

// New opens the cache, creating its directory when needed.
func New(opts ...Option) (*Cache, error) {
	c := &Cache{every: 5 * time.Second, ranges: DefaultRangesMin, minPart: DefaultMinPart, maxParts: DefaultMaxParts,
		slowRate: DefaultSlowRate, probe: DefaultProbe}
	for _, o := range opts {
		o(c)
	}
	if c.dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		c.dir = d
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.minPart <= 0 {
		c.minPart = DefaultMinPart
	}
	if c.maxParts < 2 {
		c.maxParts = 2
	}
	abs, err := filepath.Abs(c.dir)
	if err != nil {
		return nil, err
	}
	c.dir = abs
	for _, d := range []string{c.dir, filepath.Join(c.dir, "locks"), filepath.Join(c.dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("model cache: %w (set CORTEX_MODEL_CACHE to a writable directory)", err)
		}
	}
	return c, nil
}

// DefaultDir is the model cache of this machine: $CORTEX_MODEL_CACHE;
// on AWS Lambda, where only /tmp is writable, /tmp/cortex-models; else
// models in the cortex cache ($CORTEX_CACHE, or cortex in the user's cache
// directory: $XDG_CACHE_HOME or ~/.cache), the rule the CLI keeps for its
// own cache.
func DefaultDir() (string, error) {
	if d := os.Getenv("CORTEX_MODEL_CACHE"); d != "" {
		return d, nil
	}
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return "/tmp/cortex-models", nil
	}
	if d := os.Getenv("CORTEX_CACHE"); d != "" {
		return filepath.Join(d, "models"), nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "cortex", "models"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("model cache: no home directory to keep models in (%w): set CORTEX_MODEL_CACHE", err)
	}
	return filepath.Join(home, ".cache", "cortex", "models"), nil
}

// Dir returns the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// HTTPClient returns the client https:// models are fetched with.
func (c *Cache) HTTPClient() *http.Client { return c.client }

// Logger returns the cache's logger.
func (c *Cache) Logger() *slog.Logger { return c.log }

// key is what an entry may be called: a namespace and a hex digest.
var key = regexp.MustCompile(`^[a-z0-9]+(/[a-z0-9]+)*/[0-9a-f]{64}$`)

// Complete reports whether the entry key is in the cache, complete, and
// returns its directory.
func (c *Cache) Complete(k string) (string, bool) {
	dir := filepath.Join(c.dir, filepath.FromSlash(k))
	info, err := os.Lstat(filepath.Join(dir, Marker))
	return dir, err == nil && info.Mode().IsRegular()
}

// Entry returns the directory of the entry k ("sha256/HEX",
// "oci/sha256/HEX", ...), filling it first when it is not complete: fill
// writes the entry's files into staging, a fresh directory inside the
// cache, and the entry becomes complete only when fill returns nil. One
// process fills an entry at a time; the others wait for its lock and then
// find the entry complete. fetched reports whether this call filled it.
func (c *Cache) Entry(ctx context.Context, k string, fill func(ctx context.Context, staging string) error) (dir string, fetched bool, err error) {
	if !key.MatchString(k) {
		return "", false, fmt.Errorf("modelfetch: %q is not a cache key", k)
	}
	dir, ok := c.Complete(k)
	if ok {
		return dir, false, nil
	}
	flat := strings.ReplaceAll(k, "/", "-")
	unlock, err := c.lock(ctx, filepath.Join(c.dir, "locks", flat+".lock"), k)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if _, ok := c.Complete(k); ok { // another process filled it while this one waited
		return dir, false, nil
	}
	// Whatever is left of this entry is from a fetch that was killed: no
	// one else writes it while this process holds its lock.
	if err := os.RemoveAll(dir); err != nil {
		return "", false, err
	}
	stale, _ := filepath.Glob(filepath.Join(c.dir, "tmp", flat+"-*"))
	for _, s := range stale {
		c.log.Info("removing an unfinished model fetch", "path", s)
		os.RemoveAll(s)
	}
	staging, err := os.MkdirTemp(filepath.Join(c.dir, "tmp"), flat+"-")
	if err != nil {
		return "", false, err
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(staging)
		}
	}()
	if err := fill(ctx, staging); err != nil {
		return "", false, err
	}
	if err := syncTree(staging); err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", false, err
	}
	if err := os.Rename(staging, dir); err != nil {
		return "", false, err
	}
	committed = true
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return "", false, err
	}
	// The marker last: until it is on disk, the entry is not trusted.
	if err := writeSynced(filepath.Join(dir, Marker), []byte(k+"\n")); err != nil {
		return "", false, err
	}
	return dir, true, syncDir(dir)
}

// lock takes the exclusive lock at path, waiting while another process
// holds it (logging that once) until ctx is done.
func (c *Cache) lock(ctx context.Context, path, k string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	logged := false
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if ok {
			return func() { unlockFile(f); f.Close() }, nil
		}
		if !logged {
			c.log.Info("waiting for another process fetching the same model", "entry", k)
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Resolve returns the path a predictor is given for the entry in dir: its
// one .onnx file, else its one file, else the directory.
func Resolve(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var onnx, files []string
	dirs := 0
	for _, e := range entries {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, "."):
		case e.IsDir():
			dirs++
		case strings.HasSuffix(n, ".onnx"):
			onnx = append(onnx, n)
			files = append(files, n)
		default:
			files = append(files, n)
		}
	}
	switch {
	case len(onnx) == 1:
		return filepath.Join(dir, onnx[0]), nil
	case len(onnx) == 0 && dirs == 0 && len(files) == 1:
		return filepath.Join(dir, files[0]), nil
	}
	return dir, nil
}

// syncTree fsyncs every file and directory under root.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		return errors.Join(err, f.Close())
	})
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Sync(), f.Close())
}
