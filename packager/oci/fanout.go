package oci

import (
	"bufio"
	"io"
)

// asyncWriter hands what is written to it to a goroutine of its own,
// which writes it on to w (a hash) in chunks, up to depth chunks behind.
// The single pass of a model layer hashes the tar (its diffID), each
// model file (for the SBOM) and the compressed bytes (its digest): each
// hash gets a goroutine, and the pass that reads, compresses and writes
// to disk waits for none of them but when one is depth chunks behind.
// Waiting for every hash at every chunk (io.MultiWriter, or a fan-out
// joined per chunk) puts the pass in lock-step with three threads, which
// on a loaded two-core machine costs a scheduler round trip per chunk;
// the copy into a chunk costs a memmove. Memory is depth chunks, whatever
// the size of the layer.
//
// Close it, always: it waits for w to have everything, and ends the
// goroutine. w's error, if any, is Close's (hashes do not fail).
type asyncWriter struct {
	free, full chan []byte
	cur        []byte
	done       chan struct{}
	err        error // w's; read after done is closed
}

// A chunk is small enough to stay in a core's L2 cache between the copy
// in and the hash (256 KB, where 1 MB chunks went through memory), and
// depth chunks let a hash fall 2 MB behind before the pass waits for it.
const (
	asyncChunk = 256 << 10
	asyncDepth = 8
)

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{free: make(chan []byte, asyncDepth), full: make(chan []byte, asyncDepth), done: make(chan struct{})}
	for range asyncDepth {
		a.free <- make([]byte, 0, asyncChunk)
	}
	go func() {
		defer close(a.done)
		for b := range a.full {
			if a.err == nil {
				_, a.err = writeAll(w, b)
			}
			a.free <- b[:0]
		}
	}()
	return a
}

func (a *asyncWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if a.cur == nil {
			a.cur = <-a.free
		}
		k := copy(a.cur[len(a.cur):cap(a.cur)], p)
		a.cur, p = a.cur[:len(a.cur)+k], p[k:]
		if len(a.cur) == cap(a.cur) {
			a.full <- a.cur
			a.cur = nil
		}
	}
	return n, nil
}

// Close sends the last chunk and waits for w to have written everything.
// It may be called more than once.
func (a *asyncWriter) Close() error {
	select {
	case <-a.done:
		return a.err
	default:
	}
	if len(a.cur) > 0 {
		a.full <- a.cur
	}
	a.cur = nil
	close(a.full)
	<-a.done
	return a.err
}

func writeAll(w io.Writer, p []byte) (int, error) {
	n, err := w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// chunked gives w writes of asyncChunk bytes (a tar arrives in 512-byte
// headers and 32 KB copies). Flush it at the end.
func chunked(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, asyncChunk) }
