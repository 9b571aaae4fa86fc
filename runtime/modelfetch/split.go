package modelfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// How a large blob is fetched by default: one request first, parallel
// ranges only when that one is slow.
//
// Parallel ranges pay where one connection is limited well below what
// the machine takes (object stores and registry CDNs serve tens of MB/s
// per connection). Where one connection is fast (a registry in the same
// region, loopback) they cost: more requests, more CPU for the server
// on the same cores, and the blob is no longer written in order. So a
// blob starts as one streamed request, hashed as it arrives; after the
// probe time the cache looks at the rate, and only when it is below the
// slow rate does it cut the rest into ranges fetched in parallel. The
// first connection keeps its share (bytes it was going to send anyway,
// from where it is). The ranges land at their offsets (in the file
// itself for Download, in an unlinked spool file for Stream), and the
// reader hands them over in order as the contiguous prefix grows: every
// byte is hashed once, in order, while the download still runs, never in
// a second pass over a finished file.

// splitReader reads a blob [0,total) in order: from its first response
// up to cut, then from the ranges fetched in parallel into spool.
type splitReader struct {
	c      *Cache
	ctx    context.Context
	cancel context.CancelCauseFunc
	client *http.Client
	src    Source
	body   io.ReadCloser
	p      *progress
	start  time.Time

	total, pos, cut int64
	// canSplit: this blob may be cut (the cache's slow rate is set and
	// the blob is large); decided: the probe has been made.
	canSplit, decided bool

	// spool holds the ranges; with keep, it is the blob's own file and
	// the first response's bytes are written to it too (wb), in order.
	spool     *os.File
	ownsSpool bool
	keep      bool
	wb        io.Writer

	tails  []*tail
	wg     sync.WaitGroup
	landed chan struct{} // a range wrote or ended: wakes Read (one reader)
	closed bool
}

// tail is one range fetched in parallel.
type tail struct {
	off, end int64
	written  atomic.Int64 // bytes of it in spool, from off on
	err      error        // set before done
	done     atomic.Bool
}

// newSplitReader reads body, the open response for [0,total) of src. With
// file not nil, the blob is written to it (at its offsets) as well as
// read; else the ranges, if any, go to a spool file in the cache.
func (c *Cache) newSplitReader(ctx context.Context, client *http.Client, src Source, body io.ReadCloser, total int64, file *os.File, p *progress) *splitReader {
	ctx, cancel := context.WithCancelCause(ctx)
	s := &splitReader{
		c: c, ctx: ctx, cancel: cancel, client: client, src: src, body: body, p: p, start: time.Now(),
		total: total, cut: total,
		canSplit: c.slowRate > 0 && c.ranges > 0 && total >= c.ranges,
		landed:   make(chan struct{}, 1),
	}
	if file != nil {
		s.spool, s.keep, s.wb = file, true, WriteBack(file, 0)
	}
	return s
}

func (s *splitReader) Read(b []byte) (int, error) {
	if s.pos >= s.total {
		return 0, io.EOF
	}
	if s.pos < s.cut {
		n, err := s.body.Read(b[:min(int64(len(b)), s.cut-s.pos)])
		if n > 0 && s.keep {
			if _, werr := s.wb.Write(b[:n]); werr != nil {
				return 0, werr
			}
		}
		s.pos += int64(n)
		s.p.n.Add(int64(n))
		if s.pos == s.cut {
			return n, nil
		}
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("got %d bytes of %d: %w", s.pos, s.total, io.ErrUnexpectedEOF)
		}
		if err == nil && s.canSplit && !s.decided {
			err = s.probe()
		}
		return n, err
	}
	if s.body != nil {
		// Its share is read: the rest of its bytes come in the ranges.
		s.body.Close()
		s.body = nil
	}
	t := s.tails[0]
	for _, x := range s.tails {
		if x.off <= s.pos && s.pos < x.end {
			t = x
		}
	}
	for {
		if w := t.off + t.written.Load(); s.pos < w {
			n, err := s.spool.ReadAt(b[:min(int64(len(b)), w-s.pos)], s.pos)
			s.pos += int64(n)
			if errors.Is(err, io.EOF) && n > 0 {
				err = nil
			}
			return n, err
		}
		if t.done.Load() {
			if t.err != nil {
				return 0, t.err
			}
			if t.off+t.written.Load() <= s.pos {
				return 0, fmt.Errorf("bytes %d-%d: the range ended early", t.off, t.end-1)
			}
			continue
		}
		select {
		case <-s.landed:
		case <-s.ctx.Done():
			return 0, context.Cause(s.ctx)
		}
	}
}

// probe decides, once the probe time has passed, whether the rest of the
// blob is fetched in parallel ranges.
func (s *splitReader) probe() error {
	took := time.Since(s.start)
	if took < s.c.probe {
		return nil
	}
	s.decided = true
	rest := s.total - s.pos
	rate := float64(s.pos) / took.Seconds()
	if rate >= float64(s.c.slowRate) || rest < 2*s.c.minPart {
		return nil
	}
	parts := min(int64(s.c.maxParts), rest/s.c.minPart)
	share := (rest + parts - 1) / parts
	if s.spool == nil {
		f, err := os.CreateTemp(filepath.Join(s.c.dir, "tmp"), "spool-")
		if err != nil {
			return err
		}
		// Unlinked while open where the system allows: a process killed
		// mid-fetch leaves nothing behind. Elsewhere Close removes it.
		os.Remove(f.Name())
		s.spool, s.ownsSpool = f, true
	}
	s.cut = s.pos + share
	for off := s.cut; off < s.total; off += share {
		t := &tail{off: off, end: min(off+share, s.total)}
		s.tails = append(s.tails, t)
		s.wg.Go(func() { s.fetch(t) })
	}
	s.c.log.Info("model arriving slowly: fetching the rest in parallel ranges", "model", s.src.Ref,
		"mb_per_s", mbps(s.pos, took), "bytes", s.pos, "total", s.total, "ranges", len(s.tails))
	return nil
}

// fetch gets t's bytes in a range request of their own into spool.
func (s *splitReader) fetch(t *tail) {
	defer func() {
		t.done.Store(true)
		s.wake()
	}()
	resp, err := s.c.get(s.ctx, s.client, s.src, fmt.Sprintf("bytes=%d-%d", t.off, t.end-1))
	if err == nil && resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		err = fmt.Errorf("range request answered %s", resp.Status)
	}
	if err == nil {
		var n int64
		n, err = copyBuf(&tailWriter{s: s, t: t, w: WriteBack(s.spool, t.off)}, io.LimitReader(resp.Body, t.end-t.off))
		resp.Body.Close()
		if err == nil && n != t.end-t.off {
			err = fmt.Errorf("bytes %d-%d: got %d bytes of %d", t.off, t.end-1, n, t.end-t.off)
		}
	}
	if err != nil {
		t.err = err
		s.cancel(err)
	}
}

func (s *splitReader) wake() {
	select {
	case s.landed <- struct{}{}:
	default:
	}
}

// tailWriter writes a range into spool and tells the reader.
type tailWriter struct {
	s *splitReader
	t *tail
	w io.Writer
}

func (w *tailWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.t.written.Add(int64(n))
	w.s.p.n.Add(int64(n))
	w.s.wake()
	return n, err
}

// split reports whether the blob was cut into ranges.
func (s *splitReader) split() bool { return len(s.tails) > 0 }

// Close stops the ranges still running and waits for them: nothing
// writes to the blob's file after Close.
func (s *splitReader) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel(errors.New("modelfetch: fetch ended"))
	if s.body != nil {
		s.body.Close()
	}
	s.wg.Wait()
	if s.ownsSpool {
		name := s.spool.Name()
		err := s.spool.Close()
		os.Remove(name)
		return err
	}
	return nil
}
