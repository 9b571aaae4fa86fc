//go:build linux

package supervisor

import "syscall"

// sysProcAttr puts a function process in its own process group, so a
// Ctrl-C in the terminal reaches only the CLI and a signal to the group
// reaches everything the function started, and asks the kernel to kill it
// if the CLI dies without a chance to stop it. (The kernel ties that to
// the thread that forked; Go only ends a thread when a goroutine exits
// while locked to it, which this package never does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
