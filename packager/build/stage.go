package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/wasm"
)

// Stage returns the WebAssembly file for a pre: or post: entry of the spec
// in dir: the .wasm file itself, or the Go package directory compiled for
// wasip1 (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared). Compiled stages are
// cached under the cortex cache by a hash of the package's files, the
// module's go.mod and go.sum and the Go toolchain, so an unchanged stage is
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
	root, err := CacheRoot(cacheDir)
	if err != nil {
		return "", err
	}
	key, err := stageKey(ctx, src)
	if err != nil {
		return "", fmt.Errorf("stage %s: %w", rel, err)
	}
	out := filepath.Join(root, "wasm", key+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	progress(report, "compiling the stage %s for wasip1\n", rel)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	if err := wasm.BuildGo(ctx, src, tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("stage %s: %w", rel, err)
	}
	return out, os.Rename(tmp, out)
}

// stageKey hashes what decides a compiled stage's bytes.
func stageKey(ctx context.Context, pkgDir string) (string, error) {
	h := sha256.New()
	gv, err := exec.CommandContext(ctx, "go", "env", "GOVERSION", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	h.Write(gv)
	if mod := strings.TrimSpace(strings.SplitN(string(gv), "\n", 2)[1]); mod != "" && mod != os.DevNull {
		for _, f := range []string{mod, strings.TrimSuffix(mod, ".mod") + ".sum"} {
			if b, err := os.ReadFile(f); err == nil {
				h.Write(b)
			}
		}
	}
	var files []string
	err = filepath.WalkDir(pkgDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	slices.Sort(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(pkgDir, f)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
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
	return &Local{Spec: s, Binary: bin, Config: cfg}, nil
}
