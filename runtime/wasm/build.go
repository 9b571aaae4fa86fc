package wasm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildGo compiles the Go main package in pkgDir into a stage module at
// outPath with the standard toolchain (the go command on $PATH):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o outPath .
//
// The package registers its stages with functions/wasmguest from an init
// function. The go command's own build cache makes a rebuild of unchanged
// sources cheap; callers that want to skip it entirely key outPath by a hash
// of the sources.
func BuildGo(ctx context.Context, pkgDir, outPath string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building wasm stage %s: the go command is needed: %w", pkgDir, err)
	}
	out, err := filepath.Abs(outPath) // the build runs in pkgDir
	if err != nil {
		return fmt.Errorf("building wasm stage %s: %w", pkgDir, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building wasm stage %s: %w\n%s", pkgDir, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
