// Package onnxruntime puts the ONNX Runtime shared library into the cortex
// cache, where runtime/onnx looks for it and the packager ships it from.
//
// The library comes from the npm package onnxruntime-node, which carries
// the linux x64 and arm64 builds. The package is fetched with `npm pack`
// (npm's own registry settings, proxy and cache apply; no install script
// runs) and only the one library file is taken from the tarball. Writing
// npm's protocol here instead would lose the user's npm configuration.
//
// It owns the library's version, its place in the cache and the fetch; it
// must not import the rest of the packager (runtime/onnx reads the same
// place by its own rule: a function binary may not import the packager).
package onnxruntime

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
)

// Version is the onnxruntime-node release fetched; runtime/onnx is built
// against it (a test keeps the two equal).
const Version = "1.30.0"

// LibraryName is the file fetched.
const LibraryName = "libonnxruntime.so.1"

// LibraryEnv names the variable that tells a function process where the
// library is (runtime/onnx's LibraryEnv; the CLI may not import that
// package, which links ONNX Runtime through cgo).
const LibraryEnv = "CORTEX_ONNXRUNTIME_LIB"

// npmArch names a Go architecture as onnxruntime-node's directories do.
var npmArch = map[string]string{"amd64": "x64", "arm64": "arm64"}

// Path returns where the library for linux/arch lives in the cache root:
// onnxruntime/VERSION/ for the host's architecture (where runtime/onnx
// looks), onnxruntime/VERSION/linux-ARCH/ for another.
func Path(cacheRoot, arch string) string {
	dir := filepath.Join(cacheRoot, "onnxruntime", Version)
	if arch != goruntime.GOARCH {
		dir = filepath.Join(dir, "linux-"+npmArch[arch])
	}
	return filepath.Join(dir, LibraryName)
}

// ErrNoNPM: npm is needed to fetch the library and is not on PATH.
var ErrNoNPM = errors.New("onnxruntime: npm is needed to fetch ONNX Runtime (the onnxruntime-node package) and is not on PATH: install Node.js and npm, or set $CORTEX_ONNXRUNTIME_LIB to a libonnxruntime.so.1 " + Version)

// Ensure returns the cached library for linux/arch, fetching it first when
// it is not there. progress, when set, is told that a fetch starts.
func Ensure(ctx context.Context, cacheRoot, arch string, progress io.Writer) (string, error) {
	dest := Path(cacheRoot, arch)
	if st, err := os.Stat(dest); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		return dest, nil
	}
	member, ok := npmArch[arch]
	if !ok {
		return "", fmt.Errorf("onnxruntime: no ONNX Runtime build for linux/%s (want amd64 or arm64)", arch)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", ErrNoNPM
	}
	if progress != nil {
		fmt.Fprintf(progress, "fetching ONNX Runtime %s for linux/%s (npm package onnxruntime-node) into %s\n", Version, arch, filepath.Dir(dest))
	}
	tmp, err := os.MkdirTemp("", "cortex-ort-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", "--ignore-scripts", "onnxruntime-node@"+Version, "--pack-destination", tmp)
	cmd.Dir = tmp
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("onnxruntime: npm pack onnxruntime-node@%s: %w: %s", Version, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	tarball := filepath.Join(tmp, strings.TrimSpace(lines[len(lines)-1]))
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", err
	}
	if err := extract(tarball, "package/bin/napi-v6/linux/"+member+"/"+LibraryName, dest); err != nil {
		return "", fmt.Errorf("onnxruntime: %w", err)
	}
	return dest, nil
}

// extract copies one member of a .tgz to dest, atomically: a concurrent
// reader sees no file or the whole one.
func extract(tarball, member, dest string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Base(tarball), err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s has no %s", filepath.Base(tarball), member)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", filepath.Base(tarball), err)
		}
		if h.Name != member || h.Typeflag != tar.TypeReg {
			continue
		}
		part, err := os.CreateTemp(filepath.Dir(dest), "."+LibraryName+".*")
		if err != nil {
			return err
		}
		defer os.Remove(part.Name())
		if _, err := io.Copy(part, tr); err != nil {
			part.Close()
			return err
		}
		if err := part.Chmod(0o644); err != nil {
			part.Close()
			return err
		}
		if err := part.Close(); err != nil {
			return err
		}
		return os.Rename(part.Name(), dest)
	}
}
