package main

import "syscall"

// childAttr puts `cortex serve` in its own process group (so it and its
// function processes can be signalled together) and kills it if this
// program dies first: no orphans.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
