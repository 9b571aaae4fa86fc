package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MainWithBuild is a TestMain that first builds one Go program the tests
// run as a child (ARGS are go build's flags, the package last, in the
// test's package directory), sets *bin to its path, runs the tests and
// removes it. A build that fails ends the run with its output.
//
// It builds with `go run -exec cp ARGS BIN` rather than `go build -o BIN
// ARGS`: go run keeps the linked program in the build cache, so a test run
// whose program did not change copies it instead of linking it again
// (seconds for cmd/cortex, each run). Like every go run build, it has no
// DWARF debug information; the tests run it, nobody debugs it.
func MainWithBuild(m *testing.M, bin *string, args ...string) {
	dir, err := os.MkdirTemp("", "cortex-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, filepath.Base(args[len(args)-1])) // named for its package, as go build names it
	build := exec.Command("go", append(append([]string{"run", "-exec", "cp"}, args...), *bin)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building %v (go run -exec cp): %v\n", args, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
