//go:build !unix

package supervisor

import (
	"errors"
	"syscall"
)

type signal int

const (
	sigTerm signal = iota
	sigKill
)

// Supported reports whether this system can run function processes: it
// needs Unix process groups.
func Supported() error {
	return errors.New("supervisor: running functions locally needs Unix process groups")
}

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, signal) error { return Supported() }
