//go:build linux

package host

import "syscall"

// sysProcAttr puts a function process in its own process group, so a
// signal reaches everything it started, and asks the kernel to kill it if
// the host dies without a chance to shut down. (The kernel ties that to
// the thread that forked; Go only ends a thread when a goroutine exits
// while locked to it, which this package never does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
