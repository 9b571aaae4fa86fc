package load

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

// TestProcessCPU: this process's CPU time grows with work it does, and a
// process that does not exist is an error.
func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A fixed amount of work (256 MiB hashed: about 0.2 s of CPU), however
	// long a loaded machine takes to give it.
	b := make([]byte, 1<<20)
	for range 256 {
		sha256.Sum256(b)
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 20*time.Millisecond {
		t.Errorf("CPU time grew by %v over 256 MiB hashed, want at least 20ms", after-before)
	}
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Error("a process that does not exist has a CPU time")
	}
}
