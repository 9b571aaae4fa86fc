package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the front if the bench itself dies; the
// host in the front does the same for its function processes, so a crashed
// or killed bench leaves no orphan behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
