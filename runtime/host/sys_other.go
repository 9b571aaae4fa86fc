//go:build !unix

package host

import (
	"errors"
	"syscall"
)

type signal int

const (
	sigTerm signal = iota
	sigKill
)

func supported() error {
	return errors.New("host: running functions locally needs Unix process groups")
}

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, signal) error { return supported() }
