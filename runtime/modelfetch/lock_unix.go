//go:build unix

package modelfetch

import (
	"errors"
	"os"
	"syscall"
)

// flock(2) rather than a locking library: it is one system call, the
// kernel releases the lock when a process dies however it dies (so a
// SIGKILL mid-fetch leaves no stale lock), and it needs nothing beyond
// the standard library, which this package is held to.

func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

func unlockFile(f *os.File) { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
