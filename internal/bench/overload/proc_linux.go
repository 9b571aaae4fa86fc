package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the child if the bench itself dies, so
// a crashed or killed bench leaves no orphan behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
