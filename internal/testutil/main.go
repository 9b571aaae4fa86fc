package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
//
// A test binary that runs itself as a child (a host it kills, say) passes
// the program on: the child finds its path in the environment and neither
// builds it again nor owns it, so a child killed before its cleanup leaves
// no copy behind (it used to leave a 20 MB directory in TMPDIR each time).
func MainWithBuild(m *testing.M, bin *string, args ...string) {
	sum := sha256.Sum256([]byte(strings.Join(args, "\x00")))
	inherited := "CORTEX_TESTUTIL_BIN_" + hex.EncodeToString(sum[:6])
	if path := os.Getenv(inherited); path != "" {
		if _, err := os.Stat(path); err == nil {
			*bin = path
			os.Exit(m.Run()) // the parent's: it removes it
		}
	}
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
	os.Setenv(inherited, *bin) // for children of this test binary
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
