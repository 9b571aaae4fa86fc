//go:build unix && !linux

package supervisor

import "syscall"

// sysProcAttr puts a function process in its own process group, so a
// Ctrl-C in the terminal reaches only the CLI and a signal to the group
// reaches everything the function started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
