package testutil

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Unzip extracts a zip into dir as Lambda extracts a function's zip into
// /var/task, keeping each file's mode, and refusing an entry that would land
// outside dir.
func Unzip(t testing.TB, zipPath, dir string) {
	t.Helper()
	if err := UnzipDir(zipPath, dir); err != nil {
		t.Fatal(err)
	}
}

// UnzipDir is Unzip for a program: the test helpers that package a
// function and extract its zip outside the race-instrumented test binary
// (inflating a function's tens of MiB under -race took seconds).
func UnzipDir(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if err := extract(f, dir); err != nil {
			return err
		}
	}
	return nil
}

func extract(f *zip.File, dir string) error {
	dst := filepath.Join(dir, filepath.FromSlash(f.Name))
	if !strings.HasPrefix(dst, dir+string(filepath.Separator)) {
		return fmt.Errorf("zip entry %q leaves the directory", f.Name)
	}
	if f.FileInfo().IsDir() {
		return os.MkdirAll(dst, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, f.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, rc)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
