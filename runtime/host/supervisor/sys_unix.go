//go:build unix

package supervisor

import (
	"errors"
	"syscall"
)

type signal = syscall.Signal

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// Supported reports whether this system can run function processes: it
// needs Unix process groups.
func Supported() error { return nil }

// signalGroup signals every process in the group led by pid. A group that
// is already empty is not an error.
func signalGroup(pid int, sig signal) error {
	if pid <= 0 {
		return errors.New("supervisor: no process group") // kill(-0) would signal the CLI's own group
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
