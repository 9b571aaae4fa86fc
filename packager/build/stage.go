package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"

	"github.com/cortexfn/cortex/packager/onnxruntime"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

// Stage returns the WebAssembly file for a pre: or post: entry of the spec
// in dir: the .wasm file itself, or the Go package directory compiled for
// wasip1 (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, see runtime/wasm's
// ABI) in the module Binary would build the function in. Compiled stages
// are cached under the cortex cache like binaries, so an unchanged stage is
// not compiled again.
func Stage(ctx context.Context, dir, rel, cacheDir string, report io.Writer) (string, error) {
	src := filepath.Join(dir, filepath.FromSlash(rel))
	info, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", rel, err)
	}
	if !info.IsDir() {
		return src, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "cortex-stage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	o := Options{CacheDir: cacheDir, GOOS: "wasip1", GOARCH: "wasm"}
	m, err := locate(o, abs, rel, tmp)
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", rel, err)
	}
	c := compilation{Options: o, m: m, tmp: tmp, pkgDir: m.pkgDir, name: path.Base(filepath.ToSlash(rel)) + ".wasm", kind: "wasm",
		args: []string{"-buildmode=c-shared", "-trimpath"}}
	out, _, _, err := c.run(ctx, func() { progress(report, "compiling the stage %s for wasip1\n", rel) })
	if err != nil {
		return "", fmt.Errorf("building the wasm stage %s: %w", rel, err)
	}
	return out, nil
}

// RuntimeConfig returns the runtime configuration of the spec for a run on
// this machine: its stages resolved to .wasm files (Go packages compiled,
// see Stage), and wazero's compilation cache kept in the cortex cache so a
// restarted function does not compile its stages again.
func RuntimeConfig(ctx context.Context, s *spec.Spec, cacheDir string, report io.Writer) (runtime.Config, error) {
	cfg := s.RuntimeConfig()
	if s.Pre != "" || s.Post != "" {
		root, err := CacheRoot(cacheDir)
		if err != nil {
			return cfg, err
		}
		cfg.WasmCacheDir = filepath.Join(root, "wazero")
	}
	var err error
	if s.Pre != "" {
		if cfg.Pre, err = Stage(ctx, s.Dir, s.Pre, cacheDir, report); err != nil {
			return cfg, err
		}
	}
	if s.Post != "" {
		if cfg.Post, err = Stage(ctx, s.Dir, s.Post, cacheDir, report); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// Local is a function built to run on this machine, as cortex serve and
// cortex test run it.
type Local struct {
	Spec   *spec.Spec
	Binary Result
	// Config is the runtime configuration, written to the path Prepare was
	// given ($CORTEX_CONFIG for the process).
	Config runtime.Config
	// Env is what the function's process needs in its environment besides
	// $CORTEX_CONFIG: the ONNX Runtime library's path for a function that
	// links it.
	Env []string
}

// Prepare loads the function in dir, builds its binary for this machine,
// resolves its stages and writes its runtime configuration to configPath.
func Prepare(ctx context.Context, dir, configPath, cacheDir string, report io.Writer) (*Local, error) {
	s, err := spec.Load(dir)
	if err != nil {
		return nil, err
	}
	bin, err := Binary(ctx, Options{Dir: dir, Spec: s, Progress: report, CacheDir: cacheDir})
	if err != nil {
		return nil, err
	}
	cfg, err := RuntimeConfig(ctx, s, cacheDir, report)
	if err != nil {
		return nil, err
	}
	if err := WriteConfig(cfg, configPath); err != nil {
		return nil, err
	}
	l := &Local{Spec: s, Binary: bin, Config: cfg}
	if bin.ONNXRuntime && os.Getenv(onnxruntime.LibraryEnv) == "" {
		root, err := CacheRoot(cacheDir)
		if err != nil {
			return nil, err
		}
		lib, err := onnxruntime.Ensure(ctx, root, goruntime.GOARCH, report)
		if err != nil {
			return nil, err
		}
		l.Env = append(l.Env, onnxruntime.LibraryEnv+"="+lib)
	}
	return l, nil
}
