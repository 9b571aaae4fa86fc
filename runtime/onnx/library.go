package onnx

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Version is the ONNX Runtime release the predictor is built and tested
// against (the npm package onnxruntime-node of the same version).
const Version = "1.30.0"

// LibraryName is the file name of the ONNX Runtime shared library.
const LibraryName = "libonnxruntime.so.1"

// LibraryEnv names the environment variable that points at the library.
const LibraryEnv = "CORTEX_ONNXRUNTIME_LIB"

// ErrLibraryNotFound is wrapped by the error Init returns when no ONNX
// Runtime library is found.
var ErrLibraryNotFound = errors.New("onnx: ONNX Runtime library not found")

// LibraryCandidates returns the paths the library is looked for at, in
// order: $CORTEX_ONNXRUNTIME_LIB; lib/ beside the executable (how a packaged
// function ships it); lib/ under dir (the function's directory); and the
// cache that `cortex setup` fills,
// ${CORTEX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cortex}/onnxruntime/VERSION/.
func LibraryCandidates(dir string) []string {
	var c []string
	if p := os.Getenv(LibraryEnv); p != "" {
		c = append(c, p)
	}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		c = append(c, filepath.Join(filepath.Dir(exe), "lib", LibraryName))
	}
	if dir != "" {
		c = append(c, filepath.Join(dir, "lib", LibraryName))
	}
	if cache := cacheDir(); cache != "" {
		c = append(c, filepath.Join(cache, "onnxruntime", Version, LibraryName))
	}
	return c
}

func cacheDir() string {
	if d := os.Getenv("CORTEX_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "cortex")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "cortex")
	}
	return ""
}

// FindLibrary returns the first candidate (see LibraryCandidates) that is a
// regular file, or an error wrapping ErrLibraryNotFound that lists every
// path tried and how to fetch the library.
func FindLibrary(dir string) (string, error) {
	tried := LibraryCandidates(dir)
	for i, p := range tried {
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		if i == 0 && os.Getenv(LibraryEnv) != "" {
			slog.Warn("onnx: $"+LibraryEnv+" does not name a file; looking elsewhere", "path", p)
		}
	}
	return "", fmt.Errorf("%w; tried:\n  %s\nrun `cortex setup` to fetch it (in a cortex checkout, `make setup`), or set $%s to its path",
		ErrLibraryNotFound, strings.Join(tried, "\n  "), LibraryEnv)
}

// The ONNX Runtime environment is process-wide: it is created once, by the
// first Init, and lives as long as the process (sessions come and go).
var env struct {
	sync.Mutex
	path string
}

// initEnvironment loads the library and creates the environment, once per
// process. Later calls return the path loaded first.
func initEnvironment(dir string) (string, error) {
	env.Lock()
	defer env.Unlock()
	if env.path != "" {
		return env.path, nil
	}
	if ort.IsInitialized() {
		// Someone else in this process set ONNX Runtime up.
		env.path = "(initialised elsewhere)"
		return env.path, nil
	}
	path, err := FindLibrary(dir)
	if err != nil {
		return "", err
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("onnx: loading ONNX Runtime from %s: %w", path, err)
	}
	env.path = path
	slog.Info("onnx: ONNX Runtime loaded", "path", path, "version", ort.GetVersion())
	return path, nil
}
