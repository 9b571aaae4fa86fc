package packager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/onnxruntime"
	"github.com/cortexfn/cortex/packager/spec"
)

// ErrHardLink: a file to ship has hard links outside the function
// directory (Options.AllowHardlinks ships it anyway).
var ErrHardLink = errors.New("packager: hard-linked from outside the function directory")

// dirFiles opens the files a function ships through an os.Root over its
// directory, so that a file swapped for a symbolic link to the outside
// after it was checked cannot be opened: each file is opened once, and the
// outputs write what was opened (artifact.File.Opened). Close closes them.
type dirFiles struct {
	dir, real      string
	root           *os.Root
	allowHardlinks bool
	// inodes counts the links to each inode within the directory, made
	// on the first file with more than one link.
	inodes map[inode]uint64
	opened []*os.File
}

func openDir(dir string, allowHardlinks bool) (*dirFiles, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("function directory %s: %w", dir, err)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("function directory %s: %w", dir, err)
	}
	return &dirFiles{dir: dir, real: real, root: root, allowHardlinks: allowHardlinks}, nil
}

// close closes the root, and every file opened unless keep: the files of
// a built artifact stay open until the artifact is closed.
func (d *dirFiles) close(keep bool) {
	if !keep {
		for _, f := range d.opened {
			f.Close()
		}
	}
	d.opened = nil
	d.root.Close()
}

// open opens real (a resolved path inside the directory) through the root
// and checks what was opened: a regular file, with no hard link outside
// the directory.
func (d *dirFiles) open(field, relPath, real string) (*os.File, error) {
	rel, err := filepath.Rel(d.real, real)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, relPath, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s: %s is not a regular file (%s)", field, relPath, st.Mode().Type())
	}
	if err == nil {
		err = d.checkLinks(field, relPath, st)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	d.opened = append(d.opened, f)
	return f, nil
}

// checkLinks refuses a file whose link count says some of its names live
// outside the directory: a hard link carries the outside file's bytes
// past every path check.
func (d *dirFiles) checkLinks(field, relPath string, st fs.FileInfo) error {
	id, links, ok := fileInode(st)
	if !ok || links <= 1 || d.allowHardlinks {
		return nil
	}
	if d.inodes == nil {
		d.inodes = map[inode]uint64{}
		fs.WalkDir(d.root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil
			}
			if info, err := e.Info(); err == nil {
				if id, _, ok := fileInode(info); ok {
					d.inodes[id]++
				}
			}
			return nil
		})
	}
	if inside := d.inodes[id]; inside < links {
		return fmt.Errorf("%s: %s has %d hard links and only %d of them are in the function directory: %w; copy the file in (cp, not ln) or pass --allow-hardlinks",
			field, relPath, links, inside, ErrHardLink)
	}
	return nil
}

// collect lists the regular files at rel (a file or a directory) under
// the function directory d. Nothing may lead outside it: not rel itself,
// nor a symbolic link anywhere below it, nor a hard link. A symbolic link
// to a file inside ships as a copy of that file (layers and zips hold
// regular files only). Each file is opened here, once.
func (d *dirFiles) collect(field, rel string) ([]artifact.File, error) {
	root := d.dir
	clean := filepath.Clean(filepath.FromSlash(rel))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s: %q: %w; copy it into the function directory", field, rel, ErrOutsideDir)
	}
	realRoot := d.real
	inside := func(p string) bool {
		r, err := filepath.Rel(realRoot, p)
		return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
	}
	top := filepath.Join(root, clean)
	if _, err := os.Lstat(top); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, rel, err)
	}
	var out []artifact.File
	add := func(relPath, p string) error {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("%s: %s is a broken symbolic link", field, relPath)
		}
		if !inside(real) {
			return fmt.Errorf("%s: %s is a symbolic link to %s: %w; copy the file in instead", field, relPath, real, ErrOutsideDir)
		}
		st, err := os.Stat(real)
		if err != nil {
			return err
		}
		switch {
		case st.Mode().IsRegular():
			f, err := d.open(field, relPath, real)
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if st.Mode().Perm()&0o111 != 0 {
				mode = 0o755
			}
			out = append(out, artifact.File{Path: relPath, Src: real, Opened: f, Mode: mode})
			return nil
		case st.IsDir():
			return fmt.Errorf("%s: %s is a symbolic link to a directory; cortex ships regular files only: copy the directory in", field, relPath)
		}
		return fmt.Errorf("%s: %s is not a regular file (%s)", field, relPath, st.Mode().Type())
	}
	st, err := os.Stat(top)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, rel, err)
	}
	if !st.IsDir() {
		if err := add(filepath.ToSlash(clean), top); err != nil {
			return nil, err
		}
		return out, nil
	}
	realTop, err := filepath.EvalSymlinks(top)
	if err != nil {
		return nil, err
	}
	if !inside(realTop) {
		return nil, fmt.Errorf("%s: %s leads to %s: %w", field, rel, realTop, ErrOutsideDir)
	}
	err = filepath.WalkDir(realTop, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		r, err := filepath.Rel(realTop, p)
		if err != nil {
			return err
		}
		return add(path.Join(filepath.ToSlash(clean), filepath.ToSlash(r)), p)
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %s is an empty directory", field, rel)
	}
	return out, nil
}

// ErrNoONNXRuntime: the ONNX Runtime library to ship was not found.
var ErrNoONNXRuntime = errors.New("packager: ONNX Runtime library not found")

// findONNXRuntime returns the libonnxruntime.so.1 to ship for arch:
// explicit, else $CORTEX_ONNXRUNTIME_LIB (for the host's architecture),
// else the one in the cache (Options.CacheDir, then the default cache),
// fetched into the cache first when neither has it.
func findONNXRuntime(ctx context.Context, explicit, cache, arch string, progress io.Writer) (string, error) {
	if explicit != "" {
		if st, err := os.Stat(explicit); err != nil || !st.Mode().IsRegular() {
			return "", fmt.Errorf("%w: --onnxruntime %s is not a file", ErrNoONNXRuntime, explicit)
		}
		return explicit, nil
	}
	if p := os.Getenv(onnxruntime.LibraryEnv); p != "" && arch == goruntime.GOARCH {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	root, err := build.CacheRoot(cache)
	if err != nil {
		return "", err
	}
	if def, err := build.CacheRoot(""); err == nil && def != root {
		if p := onnxruntime.Path(def, arch); fileExists(p) {
			return p, nil
		}
	}
	p, err := onnxruntime.Ensure(ctx, root, arch, progress)
	if err != nil {
		return "", fmt.Errorf("%w for linux/%s: %w", ErrNoONNXRuntime, arch, err)
	}
	return p, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// lambdaLibs returns the C++ runtime libraries an ONNX function ships in
// its zip's lib/ (ONNX Runtime's RUNPATH is $ORIGIN, so it finds them
// there), and warnings when they cannot be shipped.
func lambdaLibs(dir, arch string) ([]artifact.File, []string) {
	libs := []string{"libstdc++.so.6", "libgcc_s.so.1"}
	var files []artifact.File
	var warnings []string
	for _, lib := range libs {
		var p string
		if dir != "" {
			p = filepath.Join(dir, lib)
		} else {
			if arch != goruntime.GOARCH {
				// Debian's cross packages of arch (the built-in base's).
				p = oci.CrossLibrary(arch, lib)
				if p == "" {
					warnings = append(warnings, fmt.Sprintf("the Lambda zip has no %s: this machine's is not %s and Debian's %s cross packages are not installed; give --lambda-libs DIR with copies built for Lambda (Amazon Linux 2023's libstdc++ and libgcc packages)", lib, arch, arch))
					continue
				}
			}
			for _, d := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"} {
				if p != "" {
					break
				}
				if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
					p = filepath.Join(d, lib)
				}
			}
		}
		real, err := filepath.EvalSymlinks(p)
		if p == "" || err != nil {
			warnings = append(warnings, fmt.Sprintf("the Lambda zip has no %s: not found%s; give --lambda-libs DIR", lib, map[bool]string{true: " in " + dir, false: " on this machine"}[dir != ""]))
			continue
		}
		_, newer, err := lambdazip.NewerThanLambda(real)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("the Lambda zip has no %s: %v", lib, err))
			continue
		}
		if newer {
			// It could not load on Lambda (it needs a newer glibc), and
			// need not: the runtime's own copy comes first on Lambda's
			// library path. lambdazip.CheckLibraries (writeLambda) checks
			// that the runtime's copy has every version the zip's files
			// need, and warns when it has not.
			continue
		}
		files = append(files, artifact.File{Path: "lib/" + lib, Src: real, Mode: 0o755})
	}
	return files, warnings
}

// oipMetadata is the Open Inference Protocol model metadata a client can
// read from the image before it runs (GET /v2/models/NAME answers the
// same at run time, with the tensors).
func oipMetadata(s *spec.Spec) string {
	md := map[string]any{"name": s.Name, "versions": []string{"1"}}
	switch s.Predictor.Type {
	case spec.TypeONNX:
		md["platform"] = "onnxruntime_onnx"
	case spec.TypeGo:
		md["platform"] = "cortex_go"
	}
	b, err := json.Marshal(md)
	if err != nil {
		return ""
	}
	return string(b)
}
