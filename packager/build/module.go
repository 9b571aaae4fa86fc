package build

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
)

// module is where a function's Go code is compiled: the module whose go.mod
// the go command reads, and what it is told besides.
type module struct {
	// dir is the building module's root, the go command's working directory.
	dir string
	// flags are extra go command flags: -modfile and -mod=mod when a
	// user's module builds with the CLI's SDK.
	flags []string
	// modFiles are the go.mod and go.sum the build reads; their content is
	// part of every cache key.
	modFiles []string
	// virtualDir is a directory inside the module, real or not, for the
	// generated main and overlaid files.
	virtualDir string
	// overlay maps virtual files to real ones: the user's package placed
	// inside the SDK when it has no module of its own.
	overlay map[string]string
	// pkgDir and pkgImport locate the user's Go package (predictor.path, or
	// a Go stage) as the build sees it; empty when there is none.
	pkgDir, pkgImport string
	// inSDK reports that the build runs in the SDK because the function
	// has no module of its own.
	inSDK bool
}

// locate decides where the Go code of the function in fnDir builds, and
// with it the user's package at pkgRel (relative to fnDir; "" for none):
//
//   - inside a cortex checkout (the function's module is cortex itself, as
//     the samples are): in that checkout, so a change to the runtime is seen
//     at once;
//   - a Go package in a module of the user's: in that module, whose go.mod
//     stays authoritative for the user's own dependencies, with cortex
//     replaced by the CLI's SDK (a copy of go.mod and go.sum in tmp, passed
//     with -modfile: the user's files are never written);
//   - otherwise (no Go code, or Go code with no go.mod): in the CLI's SDK,
//     with the user's package overlaid into it, so it may import the
//     standard library and cortex only.
func locate(o Options, fnDir, pkgRel, tmp string) (*module, error) {
	var pkgDir string
	if pkgRel != "" {
		pkgDir = filepath.Join(fnDir, filepath.FromSlash(pkgRel))
		if err := hasGoFiles(pkgDir); err != nil {
			return nil, err
		}
	}
	modDir, gomod, _ := findModule(fnDir)
	modPath := modfile.ModulePath(gomod)
	m := &module{overlay: map[string]string{}}
	switch {
	case modPath == CortexModule:
		m.dir = modDir
		m.modFiles = []string{filepath.Join(modDir, "go.mod"), filepath.Join(modDir, "go.sum")}
		m.virtualDir = filepath.Join(fnDir, "_cortexmain")
		if pkgDir != "" {
			m.pkgDir, m.pkgImport = pkgDir, importPath(modPath, modDir, pkgDir)
		}
		return m, nil
	case pkgDir != "" && modDir != "":
		if !isWithin(modDir, pkgDir) {
			return nil, fmt.Errorf("%s is outside the module in %s", pkgRel, modDir)
		}
		sdk, err := ExtractSDK(o.CacheDir)
		if err != nil {
			return nil, err
		}
		mod, sum, err := userModFiles(modDir, gomod, sdk, tmp)
		if err != nil {
			return nil, err
		}
		m.dir = modDir
		m.flags = []string{"-modfile=" + mod, "-mod=mod"}
		m.modFiles = []string{mod, sum}
		m.virtualDir = filepath.Join(fnDir, "_cortexmain")
		m.pkgDir, m.pkgImport = pkgDir, importPath(modPath, modDir, pkgDir)
		return m, nil
	}
	sdk, err := ExtractSDK(o.CacheDir)
	if err != nil {
		return nil, err
	}
	base := sdk.Dir
	m.dir, m.inSDK = base, true
	m.modFiles = []string{filepath.Join(base, "go.mod"), filepath.Join(base, "go.sum")}
	var files []string
	if pkgDir != "" {
		entries, err := os.ReadDir(pkgDir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if n := e.Name(); e.Type().IsRegular() && strings.HasSuffix(n, ".go") {
				files = append(files, n)
			}
		}
	}
	// The virtual directory is named for the function's Go files, not for
	// where they are: its import path is compiled into the binary, so a
	// path-derived name made the same function a different binary in every
	// checkout (and a new build, layer and zip entry in the cache for
	// each copy). Two functions with different files get different
	// directories, so two built at once never see each other's files; with
	// the same files, the same bytes are behind the same names.
	id, err := filesID(pkgDir, files)
	if err != nil {
		return nil, err
	}
	m.virtualDir = filepath.Join(base, "_cortexbuild", id)
	if pkgDir != "" {
		m.pkgDir = filepath.Join(m.virtualDir, "pkg")
		for _, n := range files {
			m.overlay[filepath.Join(m.pkgDir, n)] = filepath.Join(pkgDir, n)
		}
		m.pkgImport = importPath(CortexModule, base, m.pkgDir)
	}
	return m, nil
}

// filesID names the files (names in dir) by their names and contents:
// 12 hex digits of a sha256.
func filesID(dir string, names []string) (string, error) {
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%q %d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:6]), nil
}

// VersionError: a function's go.mod requires another cortex version than
// the CLI's, which builds every function with its own SDK.
type VersionError struct {
	GoMod             string
	Required, Running string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("%s requires %s %s, but this cortex CLI is %s and builds functions with its own SDK: "+
		"run `go mod edit -require=%s@%s` in %s, or build with cortex %s",
		e.GoMod, CortexModule, e.Required, e.Running, CortexModule, e.Running, filepath.Dir(e.GoMod), e.Required)
}

// userModFiles writes the go.mod and go.sum a user's module builds with:
// the user's own, requiring cortex at the CLI's version and replacing it by
// the SDK's directory, and the SDK's go.sum lines added to the user's.
func userModFiles(modDir string, gomod []byte, sdk SDK, tmp string) (mod, sum string, err error) {
	path := filepath.Join(modDir, "go.mod")
	f, err := modfile.Parse(path, gomod, nil)
	if err != nil {
		return "", "", err
	}
	for _, r := range f.Require {
		if r.Mod.Path == CortexModule && r.Mod.Version != sdk.Version {
			return "", "", &VersionError{GoMod: path, Required: r.Mod.Version, Running: sdk.Version}
		}
	}
	if err := f.AddRequire(CortexModule, sdk.Version); err != nil {
		return "", "", err
	}
	for _, r := range f.Replace {
		if r.Old.Path == CortexModule {
			if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return "", "", err
			}
		}
	}
	if err := f.AddReplace(CortexModule, "", sdk.Dir, ""); err != nil {
		return "", "", err
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return "", "", err
	}
	userSum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	sdkSum, err := os.ReadFile(filepath.Join(sdk.Dir, "go.sum"))
	if err != nil {
		return "", "", err
	}
	mod, sum = filepath.Join(tmp, "go.mod"), filepath.Join(tmp, "go.sum")
	if err := os.WriteFile(mod, out, 0o644); err != nil {
		return "", "", err
	}
	if len(userSum) > 0 && userSum[len(userSum)-1] != '\n' {
		userSum = append(userSum, '\n')
	}
	return mod, sum, os.WriteFile(sum, append(userSum, sdkSum...), 0o644)
}

// findModule walks up from dir to the nearest go.mod and returns its
// directory and content.
func findModule(dir string) (modDir string, gomod []byte, err error) {
	for d := dir; ; {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			return d, b, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", nil, fs.ErrNotExist
		}
		d = parent
	}
}

func importPath(modPath, modDir, pkgDir string) string {
	rel := filepath.ToSlash(mustRel(modDir, pkgDir))
	if rel == "." {
		return modPath
	}
	return modPath + "/" + rel
}

func hasGoFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return nil
		}
	}
	return fmt.Errorf("%s has no Go files", dir)
}

func isWithin(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}
