//go:build linux && (amd64 || arm64)

package modelfetch

import (
	"os"
	"syscall"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writeback of the
// range's dirty pages without waiting for it.
const syncFileRangeWrite = 2

func startWriteback(f *os.File, off, n int64) {
	// Advice only: an error (a file system without it) costs nothing but
	// the overlap.
	_ = syscall.SyncFileRange(int(f.Fd()), off, n, syncFileRangeWrite)
}
