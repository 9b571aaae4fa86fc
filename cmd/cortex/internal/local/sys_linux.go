package local

import "syscall"

// sysProcAttr puts the function in its own process group and kills it if
// the CLI dies without stopping it, so no function outlives its CLI.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
