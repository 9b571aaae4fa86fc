package host

import (
	"net"
	"syscall"
	"testing"
)

// TestSocketFileStaysNonBlocking: passing a function's socket to a
// process (os/exec takes the file's Fd) leaves the socket non-blocking,
// so that closing a listener on it interrupts an Accept: the host stops
// accepting when a process is ready, a process when it is quiesced,
// without taking one more connection first.
func TestSocketFileStaysNonBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := socketFile(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd()) // what os/exec does with a file it passes
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if flags&syscall.O_NONBLOCK == 0 {
		t.Error("the socket is in blocking mode after its file's Fd: an Accept on it would not return at Close")
	}
	flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if flags&syscall.FD_CLOEXEC == 0 {
		t.Error("the socket's duplicate is not close-on-exec: every process would inherit it, not only the function's")
	}
}
