package modelfetch

import (
	"io"
	"os"
)

// writebackEvery is how many bytes are written before the kernel is asked
// to start writing them to disk.
const writebackEvery = 8 << 20

// WriteBack returns a writer that writes to f from off on and asks the
// kernel, every 8 MiB, to start writing what it wrote to disk (Linux:
// sync_file_range). The fsync that makes an entry trusted then has little
// left to wait for: the disk writes while the network reads, instead of
// after it. Elsewhere it only writes.
func WriteBack(f *os.File, off int64) io.Writer {
	return &writeback{f: f, off: off, flushed: off}
}

type writeback struct {
	f            *os.File
	off, flushed int64
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	if w.off-w.flushed >= writebackEvery {
		startWriteback(w.f, w.flushed, w.off-w.flushed)
		w.flushed = w.off
	}
	return n, err
}
