//go:build unix

package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cortexfn/cortex/packager/spec"
)

// The function binary is the one `cortex package` ships: its Lambda zip
// unzipped, as internal/parity runs it. The zip holds what the image
// holds (bootstrap, cortex.json beside it, lib/libonnxruntime.so.1, the
// model), and the binary finds all of it beside itself, so run with $PORT
// it serves as Knative runs the image.

// packaged packages dir with the CLI (only its Lambda zip) into out/dist
// and returns the zip's path.
func (b *bench) packaged(ctx context.Context, dir, out string) (string, error) {
	dist := filepath.Join(out, "dist")
	cmd := exec.CommandContext(ctx, b.cortex, "package", dir, "--out", dist, "--outputs", "lambda")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s package %s: %w\n%s", b.cortex, dir, err, msg)
	}
	return filepath.Join(dist, "lambda.zip"), nil
}

// withBatching makes the batching row's function: the same packaged
// binary, model and library as task (linked, not rebuilt, so that on and
// off differ in nothing else), with task's cortex.json but for its
// batching section, which is what the packager's spec makes of a copy of
// dir whose cortex.yaml turns batching on.
func withBatching(dir, task, out string) (string, error) {
	src := filepath.Join(out, "src")
	if err := copyFunction(dir, src); err != nil {
		return "", err
	}
	yamlPath := filepath.Join(src, "cortex.yaml")
	y, err := os.ReadFile(yamlPath)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(y)) {
		if strings.HasPrefix(line, "batching:") {
			return "", fmt.Errorf("%s already has a batching section; the bench sets its own", filepath.Join(dir, "cortex.yaml"))
		}
	}
	y = fmt.Appendf(bytes.TrimRight(y, "\n"), "\nbatching: {max_batch_size: %d, batch_interval: %s}\n", maxBatch, batchInterval)
	if err := os.WriteFile(yamlPath, y, 0o644); err != nil {
		return "", err
	}
	s, err := spec.Load(src)
	if err != nil {
		return "", err
	}
	batching := s.RuntimeConfig().Batching
	if batching.MaxBatchSize != maxBatch || batching.BatchInterval.D() != batchInterval {
		return "", fmt.Errorf("cortex.yaml's batching section became %+v", batching)
	}
	var cfg map[string]json.RawMessage
	b, err := os.ReadFile(filepath.Join(task, "cortex.json"))
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		return "", fmt.Errorf("the packaged cortex.json: %w", err)
	}
	if cfg["batching"], err = json.Marshal(batching); err != nil {
		return "", err
	}
	if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		return "", err
	}
	linked := filepath.Join(out, "task")
	if err := linkTree(task, linked); err != nil {
		return "", err
	}
	if err := os.Remove(filepath.Join(linked, "cortex.json")); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(linked, "cortex.json"), b, 0o644); err != nil {
		return "", err
	}
	return linked, nil
}

// copyFunction copies a function directory's files, without dist/ and
// dot-files, for a variant of its cortex.yaml.
func copyFunction(dir, to string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "dist") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return nil
	})
}

// linkTree makes to a copy of from of hard links (copies where a link
// cannot be made).
func linkTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if os.Link(path, target) == nil {
			return nil
		}
		return copyFile(path, target)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// unzip extracts a Lambda zip into dir, keeping the files' modes.
func unzip(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			if err := root.MkdirAll(f.Name, 0o755); err != nil {
				return err
			}
			continue
		}
		if d := filepath.Dir(f.Name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := unzipFile(root, f); err != nil {
			return fmt.Errorf("unzipping %s: %w", f.Name, err)
		}
	}
	return nil
}

func unzipFile(root *os.Root, f *zip.File) error {
	in, err := f.Open()
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := root.OpenFile(f.Name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode().Perm()|0o400)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
