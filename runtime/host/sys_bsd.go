//go:build unix && !linux

package host

import "syscall"

// sysProcAttr puts a function process in its own process group, so a
// signal reaches everything it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
