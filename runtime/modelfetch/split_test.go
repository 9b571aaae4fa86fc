package modelfetch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/modelfetch"
)

// slowServer serves a blob whose first request (from byte 0) trickles,
// as one connection to an object store does, and whose range requests
// for later bytes answer at once, from tampered when it is set.
type slowServer struct {
	*httptest.Server
	blob     []byte
	tampered []byte
	gets     atomic.Int64
	ranges   atomic.Int64 // requests from past byte 0
}

func newSlowServer(t *testing.T, blob []byte) *slowServer {
	t.Helper()
	s := &slowServer{blob: blob}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.gets.Add(1)
		rg := r.Header.Get("Range")
		if rg != "" && !strings.HasPrefix(rg, "bytes=0-") {
			s.ranges.Add(1)
			b := s.blob
			if s.tampered != nil {
				b = s.tampered
			}
			http.ServeContent(w, r, "m.onnx", time.Time{}, bytes.NewReader(b))
			return
		}
		// 64 KiB a millisecond at most: a slow connection, never a
		// stalled one (its share of the blob must still arrive).
		http.ServeContent(&trickle{ResponseWriter: w}, r, "m.onnx", time.Time{}, bytes.NewReader(s.blob))
	}))
	t.Cleanup(s.Close)
	return s
}

type trickle struct{ http.ResponseWriter }

func (w *trickle) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), 64<<10)
		m, err := w.ResponseWriter.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		w.ResponseWriter.(http.Flusher).Flush()
		time.Sleep(time.Millisecond)
		b = b[k:]
	}
	return n, nil
}

// slowOpts cut a blob of 1 MiB or more into ranges of at least 1 MiB,
// 4 at most, when its first request is slower than any connection
// could be, after 20ms: the first request always is.
var slowOpts = []modelfetch.Option{modelfetch.WithRanges(1<<20, 1<<20, 4), modelfetch.WithRangesWhenSlow(1<<50, 20*time.Millisecond)}

// TestSlowFetchSplits: a blob whose one request is slow has the rest of
// its bytes fetched in parallel ranges, put together in order, and its
// digest checked over all of them.
func TestSlowFetchSplits(t *testing.T) {
	blob := random(t, 6<<20+321)
	s := newSlowServer(t, blob)
	dir := t.TempDir()
	c := newCache(t, dir, &blobServer{Server: s.Server}, slowOpts...)
	p, err := c.Fetch(context.Background(), s.URL+"/big.onnx", sum(blob))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, blob) {
		t.Error("the first request's share and the ranges were not put together into the blob")
	}
	if n := s.ranges.Load(); n < 1 || n > 3 {
		t.Errorf("%d range requests, want 1 to 3 (4 parts at most, the first the slow request's own)", n)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("the fetch left %v in the cache's tmp", left)
	}
}

// TestFastFetchDoesNotSplit: a blob that arrives fast is fetched in its
// one request, however large.
func TestFastFetchDoesNotSplit(t *testing.T) {
	blob := random(t, 3<<20)
	s := newBlobServer(t, blob)
	// Slow only below 1 byte/s: every connection is fast.
	c := newCache(t, t.TempDir(), s, modelfetch.WithRanges(1<<20, 1<<20, 4), modelfetch.WithRangesWhenSlow(1, 0))
	if _, err := c.Fetch(context.Background(), s.URL+"/big.onnx", sum(blob)); err != nil {
		t.Fatal(err)
	}
	if g, r := s.gets.Load(), s.ranges.Load(); g != 1 || r != 0 {
		t.Errorf("%d requests, %d for ranges; want the blob in 1", g, r)
	}
}

// TestSlowFetchTamperedRange: a range that brings other bytes than the
// blob's fails the fetch with the digests, and nothing is kept.
func TestSlowFetchTamperedRange(t *testing.T) {
	blob := random(t, 6<<20)
	s := newSlowServer(t, blob)
	s.tampered = bytes.Clone(blob)
	s.tampered[len(blob)-10] ^= 0xff
	dir := t.TempDir()
	c := newCache(t, dir, &blobServer{Server: s.Server}, slowOpts...)
	_, err := c.Fetch(context.Background(), s.URL+"/big.onnx", sum(blob))
	var de *modelfetch.DigestError
	if !errors.As(err, &de) || de.Want != sum(blob) || de.Got != sum(s.tampered) {
		t.Fatalf("err = %v, want a DigestError naming both digests", err)
	}
	if s.ranges.Load() == 0 {
		t.Fatal("no range was requested: the test tampered with nothing the fetch read")
	}
	assertNothingTrusted(t, dir)
}

// TestSlowStreamSplits: Stream (an OCI layer unpacked as it arrives)
// hands its consumer the blob in order, the ranges through a spool file
// that is gone afterwards, and checks the digest; a tampered range fails.
func TestSlowStreamSplits(t *testing.T) {
	blob := random(t, 6<<20+7)
	for _, tamper := range []bool{false, true} {
		s := newSlowServer(t, blob)
		if tamper {
			s.tampered = bytes.Clone(blob)
			s.tampered[len(blob)-1] ^= 1
		}
		dir := t.TempDir()
		c := newCache(t, dir, &blobServer{Server: s.Server}, slowOpts...)
		var got bytes.Buffer
		h := sha256.New()
		digest, size, err := c.Stream(context.Background(), modelfetch.Source{Ref: "m", URL: s.URL + "/m", SHA256: sum(blob)}, func(r io.Reader) error {
			_, err := io.Copy(io.MultiWriter(&got, h), r)
			return err
		})
		if s.ranges.Load() == 0 {
			t.Fatalf("tampered %t: no range was requested", tamper)
		}
		if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
			t.Errorf("tampered %t: the spool is still in the cache's tmp: %v", tamper, left)
		}
		var de *modelfetch.DigestError
		if tamper {
			if !errors.As(err, &de) {
				t.Errorf("tampered: err = %v, want a DigestError", err)
			}
			continue
		}
		if err != nil || digest != sum(blob) || size != int64(len(blob)) {
			t.Fatalf("Stream = %s, %d, %v; want %s, %d", digest, size, err, sum(blob), len(blob))
		}
		if !bytes.Equal(got.Bytes(), blob) || hex.EncodeToString(h.Sum(nil)) != sum(blob) {
			t.Error("the consumer did not get the blob, in order")
		}
	}
}
