package oci_test

import "syscall"

// flushDisk writes every dirty page back to disk (sync(2)).
func flushDisk() { syscall.Sync() }
