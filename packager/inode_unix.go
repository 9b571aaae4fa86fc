//go:build unix

package packager

import (
	"io/fs"
	"syscall"
)

// inode identifies a file on this machine.
type inode struct{ dev, ino uint64 }

// fileInode returns the file's inode and link count, when the platform
// says.
func fileInode(fi fs.FileInfo) (inode, uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return inode{}, 0, false
	}
	return inode{uint64(st.Dev), uint64(st.Ino)}, uint64(st.Nlink), true
}
