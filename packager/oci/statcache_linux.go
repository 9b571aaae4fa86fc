//go:build linux

package oci

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileIdentity is the device, inode and change time of the file, for the
// stat cache's key.
func fileIdentity(st fs.FileInfo) string {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	sec, nsec := s.Ctim.Unix()
	return fmt.Sprintf("dev=%d ino=%d ctime=%d.%09d", uint64(s.Dev), uint64(s.Ino), sec, nsec)
}
