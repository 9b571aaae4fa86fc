package modelfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Source is one blob to download over HTTP(S).
type Source struct {
	// Ref names the model in messages and logs.
	Ref string
	// URL is fetched with GET (and Range requests when the blob is
	// large and the server takes them).
	URL string
	// Client sends the requests; nil means the cache's client.
	Client *http.Client
	// Header is added to every request.
	Header http.Header
	// SHA256 is the expected hex digest; empty to accept any content
	// (the digest is then only computed and returned).
	SHA256 string
	// Size is the blob's size when known beforehand (an OCI descriptor
	// says it), else 0. With it a large blob is asked for in exact
	// ranges from the first request, for servers that take no
	// open-ended one.
	Size int64
}

// DigestError is a downloaded blob whose digest is not the one expected.
type DigestError struct {
	Ref, Want, Got string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("model %s: sha256 is %s, expected %s: the file changed or was tampered with; nothing of it was kept (fix the reference or its digest)", e.Ref, e.Got, e.Want)
}

// bufPool holds copy buffers: memory stays flat whatever the model's size.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Download fetches src into the new file dst (inside the cache's
// staging directory: Entry's fill) and returns its hex SHA-256 and size.
// The blob streams in one request, hashed as it arrives; a large one
// from a server that takes Range requests has the rest of its bytes
// fetched in parallel ranges when that request is slow (split.go), still
// hashed in order while they land, or in ranges from the start with
// WithRanges (hashed in one pass afterwards). A digest that differs from
// src.SHA256 is a *DigestError.
func (c *Cache) Download(ctx context.Context, src Source, dst string) (sum string, size int64, err error) {
	client := src.Client
	if client == nil {
		client = c.client
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	start := time.Now()
	p := &progress{}
	stop := c.report(src.Ref, p, start)
	defer stop()

	rng := "bytes=0-"
	if c.Ranged(src.Size) {
		rng = fmt.Sprintf("bytes=0-%d", c.partSize(src.Size)-1)
	} else if src.Size > 0 {
		rng = fmt.Sprintf("bytes=0-%d", src.Size-1)
	}
	resp, err := c.get(ctx, client, src, rng)
	if err == nil && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		// A server that takes no open-ended range (or an empty blob):
		// the whole blob in one response.
		resp.Body.Close()
		resp, err = c.get(ctx, client, src, "")
	}
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	total := int64(-1)
	parallel := false
	switch resp.StatusCode {
	case http.StatusOK:
		total = resp.ContentLength
	case http.StatusPartialContent:
		total, err = contentRangeTotal(resp.Header.Get("Content-Range"))
		if err != nil {
			resp.Body.Close()
			return "", 0, fmt.Errorf("model %s: %w", src.Ref, err)
		}
		parallel = c.Ranged(total)
	default:
		resp.Body.Close()
		return "", 0, fmt.Errorf("model %s: GET %s: %s", src.Ref, redact(src.URL), resp.Status)
	}
	p.total.Store(total)
	switch {
	case parallel:
		err = c.ranged(ctx, client, src, resp.Body, 0, total, f, 0, p)
		if err == nil {
			_, err = copyBuf(h, io.NewSectionReader(f, 0, total))
		}
	case resp.StatusCode == http.StatusPartialContent:
		// One request, and ranges for the rest if it is slow: the reader
		// writes the blob to f and hands it over in order for the hash.
		sr := c.newSplitReader(ctx, client, src, resp.Body, total, f, p)
		_, err = copyBuf(h, sr)
		err = errors.Join(err, sr.Close())
		parallel = sr.split()
	default:
		_, err = copyBuf(io.MultiWriter(WriteBack(f, 0), h, p), resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		return "", 0, fmt.Errorf("model %s: fetching %s: %w", src.Ref, redact(src.URL), err)
	}
	size = p.n.Load()
	if total >= 0 && size != total {
		return "", 0, fmt.Errorf("model %s: got %d bytes of %d", src.Ref, size, total)
	}
	// No fsync here: Entry fsyncs whatever its fill leaves in staging
	// before the entry is trusted, and a blob unpacked and removed
	// (an OCI layer) never needs to reach the disk.
	sum = hex.EncodeToString(h.Sum(nil))
	if src.SHA256 != "" && !strings.EqualFold(sum, src.SHA256) {
		return sum, size, &DigestError{Ref: src.Ref, Want: strings.ToLower(src.SHA256), Got: sum}
	}
	took := time.Since(start)
	c.log.Info("model blob fetched", "model", src.Ref, "bytes", size, "took", took.Round(time.Millisecond).String(),
		"mb_per_s", mbps(size, took), "sha256", sum, "ranges", parallel)
	return sum, size, nil
}

// Ranged reports whether a blob of size bytes is fetched in parallel
// ranges from the first request (WithRanges; when its server takes
// them): Download then writes it to a file whole before anything reads
// it, where Stream hands it over as it arrives. By default it is false:
// Download and Stream start with one request and cut the rest into
// ranges only when that one is slow (WithRangesWhenSlow).
func (c *Cache) Ranged(size int64) bool { return c.ranges > 0 && c.slowRate <= 0 && size >= c.ranges }

// Stream fetches src in one request and hands its body to consume as it
// arrives, hashing it on the way: for a blob that is unpacked rather than
// kept (an OCI layer), so that it is neither written to disk whole nor
// read twice. When that request is slow, the rest of a large blob comes
// in parallel ranges (WithRangesWhenSlow), through an unlinked spool file
// the body then reads in order. After consume returns, the rest of the
// body is read into the digest, which is then checked: a blob whose
// digest differs from src.SHA256 is a *DigestError, even when consume
// failed first on what the tampering did to it. Whatever consume wrote must not be trusted
// until Stream returns nil (in Entry's staging it is not).
func (c *Cache) Stream(ctx context.Context, src Source, consume func(io.Reader) error) (sum string, size int64, err error) {
	client := src.Client
	if client == nil {
		client = c.client
	}
	start := time.Now()
	p := &progress{}
	stop := c.report(src.Ref, p, start)
	defer stop()
	// A range request only where the blob may be cut: a server that
	// takes none answers it with the whole blob all the same.
	rng := ""
	if c.slowRate > 0 && c.ranges > 0 && (src.Size == 0 || src.Size >= c.ranges) {
		rng = "bytes=0-"
		if src.Size > 0 {
			rng = fmt.Sprintf("bytes=0-%d", src.Size-1)
		}
	}
	resp, err := c.get(ctx, client, src, rng)
	if err == nil && rng != "" && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		resp.Body.Close() // an empty blob
		resp, err = c.get(ctx, client, src, "")
	}
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	total := resp.ContentLength
	var r io.Reader = io.TeeReader(resp.Body, p)
	var sr *splitReader
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusPartialContent:
		if total, err = contentRangeTotal(resp.Header.Get("Content-Range")); err != nil {
			return "", 0, fmt.Errorf("model %s: %w", src.Ref, err)
		}
		sr = c.newSplitReader(ctx, client, src, resp.Body, total, nil, p)
		defer sr.Close()
		r = sr
	default:
		return "", 0, fmt.Errorf("model %s: GET %s: %s", src.Ref, redact(src.URL), resp.Status)
	}
	p.total.Store(total)
	h := sha256.New()
	body := io.TeeReader(r, h)
	cerr := consume(body)
	_, rerr := copyBuf(io.Discard, body)
	size = p.n.Load()
	sum = hex.EncodeToString(h.Sum(nil))
	if rerr == nil && src.SHA256 != "" && !strings.EqualFold(sum, src.SHA256) {
		return sum, size, &DigestError{Ref: src.Ref, Want: strings.ToLower(src.SHA256), Got: sum}
	}
	switch {
	case rerr != nil:
		return "", 0, fmt.Errorf("model %s: fetching %s: %w", src.Ref, redact(src.URL), rerr)
	case total >= 0 && size != total:
		return "", 0, fmt.Errorf("model %s: got %d bytes of %d", src.Ref, size, total)
	case cerr != nil:
		return "", 0, cerr
	}
	took := time.Since(start)
	c.log.Info("model blob fetched", "model", src.Ref, "bytes", size, "took", took.Round(time.Millisecond).String(),
		"mb_per_s", mbps(size, took), "sha256", sum, "ranges", sr != nil && sr.split())
	return sum, size, nil
}

// ranged fetches [from,to) of src into f at fOff onwards, in parallel
// parts: the first from first, a response already open on from, when
// not nil, the others in range requests of their own, each written at
// its offset.
func (c *Cache) ranged(ctx context.Context, client *http.Client, src Source, first io.ReadCloser, from, to int64, f *os.File, fOff int64, p *progress) error {
	size := c.partSize(to - from)
	parts := (to - from + size - 1) / size
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for i := int64(0); i < parts; i++ {
		off, end := from+i*size, min(from+(i+1)*size, to)
		wg.Go(func() {
			body := first
			if i > 0 || body == nil {
				resp, err := c.get(ctx, client, src, fmt.Sprintf("bytes=%d-%d", off, end-1))
				if err == nil && resp.StatusCode != http.StatusPartialContent {
					resp.Body.Close()
					err = fmt.Errorf("range request answered %s", resp.Status)
				}
				if err != nil {
					errs[i] = err
					cancel(err)
					return
				}
				body = resp.Body
			}
			defer body.Close()
			n, err := copyBuf(io.MultiWriter(WriteBack(f, fOff+off-from), p), io.LimitReader(body, end-off))
			if err == nil && n != end-off {
				err = fmt.Errorf("bytes %d-%d: got %d bytes of %d", off, end-1, n, end-off)
			}
			if err != nil {
				errs[i] = err
				cancel(err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ErrNoRanges is returned by ReadRange when the server answers a range
// request with the whole blob.
var ErrNoRanges = errors.New("modelfetch: the server does not take range requests")

// ReadRange returns bytes [off, off+n) of src, fetched in one range
// request; ErrNoRanges when the server does not take them.
func (c *Cache) ReadRange(ctx context.Context, src Source, off, n int64) ([]byte, error) {
	client := src.Client
	if client == nil {
		client = c.client
	}
	resp, err := c.get(ctx, client, src, fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		return nil, ErrNoRanges
	default:
		return nil, fmt.Errorf("model %s: GET %s: %s", src.Ref, redact(src.URL), resp.Status)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, b); err != nil {
		return nil, fmt.Errorf("model %s: bytes %d-%d: %w", src.Ref, off, off+n-1, err)
	}
	return b, nil
}

// DownloadRange fetches bytes [from, to) of src into f at fOff onwards,
// in parallel range requests, logging progress. It checks no digest: the
// caller hashes what it assembled (an OCI layer's file, between its tar
// headers).
func (c *Cache) DownloadRange(ctx context.Context, src Source, from, to int64, f *os.File, fOff int64) error {
	client := src.Client
	if client == nil {
		client = c.client
	}
	start := time.Now()
	p := &progress{}
	p.total.Store(to - from)
	stop := c.report(src.Ref, p, start)
	defer stop()
	if err := c.ranged(ctx, client, src, nil, from, to, f, fOff, p); err != nil {
		return fmt.Errorf("model %s: fetching %s: %w", src.Ref, redact(src.URL), err)
	}
	took := time.Since(start)
	c.log.Info("model bytes fetched", "model", src.Ref, "bytes", to-from, "took", took.Round(time.Millisecond).String(),
		"mb_per_s", mbps(to-from, took), "ranges", true)
	return nil
}

// partSize is the size of each range of a blob of total bytes: at most
// maxParts of them, none smaller than minPart.
func (c *Cache) partSize(total int64) int64 {
	parts := min(int64(c.maxParts), max(1, total/c.minPart))
	return (total + parts - 1) / parts
}

func (c *Cache) get(ctx context.Context, client *http.Client, src Source, rng string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", src.Ref, err)
	}
	for k, vs := range src.Header {
		req.Header[k] = vs
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	// Ranges of the bytes as stored: a transparently decompressed body
	// would be neither the blob nor its length.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", src.Ref, err)
	}
	return resp, nil
}

// contentRangeTotal reads N from "bytes A-B/N".
func contentRangeTotal(v string) (int64, error) {
	_, total, ok := strings.Cut(v, "/")
	n, err := strconv.ParseInt(total, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("the server answered a range request with Content-Range %q, without the blob's size", v)
	}
	return n, nil
}

// redact drops a URL's query, where presigned URLs keep their signature.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

func copyBuf(dst io.Writer, src io.Reader) (int64, error) {
	b := bufPool.Get().(*[]byte)
	defer bufPool.Put(b)
	return io.CopyBuffer(dst, struct{ io.Reader }{src}, *b)
}

// progress counts the bytes of one download.
type progress struct {
	n, total atomic.Int64
}

func (p *progress) Write(b []byte) (int, error) { p.n.Add(int64(len(b))); return len(b), nil }

// report logs p every c.every until stop is called.
func (c *Cache) report(ref string, p *progress, start time.Time) (stop func()) {
	if c.every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	t := time.NewTicker(c.every)
	go func() {
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := p.n.Load()
				c.log.Info("fetching model", "model", ref, "bytes", n, "total", p.total.Load(), "mb_per_s", mbps(n, time.Since(start)))
			}
		}
	}()
	return func() { close(done) }
}

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(int64(float64(n)/d.Seconds()/1e4)) / 100 // MB/s, two decimals
}
