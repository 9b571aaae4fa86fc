//go:build !unix

package packager

import "io/fs"

// inode identifies a file on this machine.
type inode struct{ dev, ino uint64 }

// fileInode reports nothing where the platform has no link counts.
func fileInode(fs.FileInfo) (inode, uint64, bool) { return inode{}, 0, false }
