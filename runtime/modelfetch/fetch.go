package modelfetch

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"
)

// Fetcher fetches the models of one reference scheme into a cache.
type Fetcher interface {
	// Fetch makes ref's model a complete entry of c (with c.Entry) and
	// returns the entry's directory.
	Fetch(ctx context.Context, c *Cache, ref Ref) (dir string, err error)
}

// FetcherFunc adapts a function to a Fetcher.
type FetcherFunc func(ctx context.Context, c *Cache, ref Ref) (string, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, c *Cache, ref Ref) (string, error) {
	return f(ctx, c, ref)
}

var (
	mu       sync.RWMutex
	fetchers = map[string]Fetcher{"https": FetcherFunc(fetchHTTPS)}
	// packages says which package registers a scheme, for the error of a
	// binary built without it.
	packages = map[string]string{"oci": "runtime/modelfetch/oci", "s3": "runtime/modelfetch/s3"}
)

// Register makes f fetch the references of scheme ("oci", "s3"). It is
// called from the init of the package that implements the scheme, and
// panics when the scheme is registered twice.
func Register(scheme string, f Fetcher) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := fetchers[scheme]; dup {
		panic("modelfetch: scheme " + scheme + " registered twice")
	}
	fetchers[scheme] = f
}

// Schemes lists the schemes this binary fetches.
func Schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	var s []string
	for k := range fetchers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// FetchError is a model that could not be fetched: it names the
// reference and the digest expected, when there is one.
type FetchError struct {
	Ref    string
	SHA256 string
	Err    error
}

func (e *FetchError) Error() string {
	if e.SHA256 != "" {
		return fmt.Sprintf("fetching model %s (sha256 %s): %v", e.Ref, e.SHA256, e.Err)
	}
	return fmt.Sprintf("fetching model %s: %v", e.Ref, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Fetch makes the model ref (with its expected hex digest, or "") a
// complete entry of the cache and returns the path a predictor is given:
// the entry's one .onnx file, or its one file, or its directory
// (Resolve).
func (c *Cache) Fetch(ctx context.Context, ref, sha256 string) (string, error) {
	r, err := ParseRef(ref, sha256)
	if err != nil {
		return "", err
	}
	mu.RLock()
	f, ok := fetchers[r.Scheme]
	mu.RUnlock()
	if !ok {
		return "", &FetchError{Ref: ref, SHA256: r.SHA256, Err: fmt.Errorf("this function binary was built without %s:// support (the generated main imports %s when the spec names such a model); build it again with cortex package", r.Scheme, packages[r.Scheme])}
	}
	start := time.Now()
	dir, err := f.Fetch(ctx, c, r)
	if err != nil {
		var fe *FetchError
		if errors.As(err, &fe) {
			return "", err
		}
		return "", &FetchError{Ref: ref, SHA256: r.SHA256, Err: err}
	}
	p, err := Resolve(dir)
	if err != nil {
		return "", &FetchError{Ref: ref, SHA256: r.SHA256, Err: err}
	}
	c.log.Info("model ready", "model", ref, "path", p, "took", time.Since(start).Round(time.Millisecond).String())
	return p, nil
}

// fileName is what a fetched file may be called in its entry.
var fileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$`)

// FileName returns the name a file fetched from the URL or key p is kept
// under: its last path element, or "model" when that is not a plain file
// name.
func FileName(p string) string {
	if n := path.Base(p); fileName.MatchString(n) {
		return n
	}
	return "model"
}

// fetchHTTPS fetches an https:// model: one file, checked against its
// required digest, kept in sha256/HEX/ under its URL's file name.
func fetchHTTPS(ctx context.Context, c *Cache, r Ref) (string, error) {
	u, err := url.Parse(r.Raw)
	if err != nil {
		return "", err
	}
	dir, _, err := c.Entry(ctx, "sha256/"+r.SHA256, func(ctx context.Context, staging string) error {
		_, _, err := c.Download(ctx, Source{Ref: r.Raw, URL: r.Raw, SHA256: r.SHA256}, filepath.Join(staging, FileName(u.Path)))
		return err
	})
	return dir, err
}
