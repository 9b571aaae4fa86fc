package load

import (
	"os/exec"
	"syscall"
)

// DieWithParent has the kernel kill the child if the bench itself dies, so
// a crashed or killed bench leaves no orphan behind.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
