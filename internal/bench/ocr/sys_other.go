//go:build !linux

package main

import "syscall"

// childAttr puts `cortex serve` in its own process group, so it and its
// function processes can be signalled together.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
