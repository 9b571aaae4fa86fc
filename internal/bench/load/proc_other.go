//go:build !linux

package load

import "os/exec"

// DieWithParent does nothing where the kernel cannot: the bench's own
// cleanup stops the child.
func DieWithParent(*exec.Cmd) {}
