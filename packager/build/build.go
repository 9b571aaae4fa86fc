// Package build compiles a function into one executable: a generated main
// that serves the function's predictor with runtime.Main.
//
// # The Go contract
//
// For type onnx the generated main is runtime.Main(onnx.New()): no user code.
// With predictor.models or predictor.models_dir it is
// runtime.Main(onnx.NewRepository(...)), the spec's choices written out as
// options (onnx.WithModelsDir, onnx.WithCacheSize, ...).
// For type go, predictor.path names a Go package that exports
//
//	func New() functions.Predictor
//
// (returning a concrete type that implements functions.Predictor works too).
// New is called once at start; load models in Init, not in New. A New with
// another signature is a build error that says so.
//
// # Where the main is built
//
// Nothing is written into the user's directory: the generated main.go lives
// in a temporary directory and `go build -overlay` places it at a virtual
// path inside the module that builds it:
//
//   - the function directory's own module, when that module is
//     github.com/cortexfn/cortex or requires it (so the function builds
//     against the cortex version it chose);
//   - otherwise the cortex module itself, found by walking up from the
//     current directory, or downloaded with `go mod download` at the
//     version of the running CLI. The predictor package's files are then
//     overlaid into the cortex module too, so such a package may import only
//     the standard library and cortex. A function that needs other modules
//     gets its own go.mod that requires github.com/cortexfn/cortex.
//
// # Flags and caching
//
// Binaries are built with -trimpath, -ldflags="-s -w" and -tags
// lambda.norpc; CGO_ENABLED=1 for onnx (ONNX Runtime is reached through
// cgo) and 0 for pure-Go functions, which are therefore static. Go's own
// build cache makes rebuilds cheap; on top of it the output binary is cached
// under $CORTEX_CACHE (default $XDG_CACHE_HOME/cortex or ~/.cache/cortex) in
// bin/<hash>/, keyed by the generated main, the flags, the Go toolchain,
// the building module's go.mod and go.sum, and the sources of every
// non-standard package the binary imports (from `go list -deps`; module
// cache directories are keyed by their versioned path), so an unchanged
// function is not built again and editing an unrelated package does not
// invalidate it. Options.NoCache forces a build.
package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

// CortexModule is the module path of Cortex.
const CortexModule = "github.com/cortexfn/cortex"

// Options says what to build and for where.
type Options struct {
	// Dir is the function directory (the one holding cortex.yaml).
	Dir string
	// Spec is the function's spec, loaded from Dir (spec.Load), with
	// defaults set.
	Spec *spec.Spec
	// GOOS and GOARCH name the target; empty means the host's. Packaging
	// for Knative or Lambda asks for linux and amd64 or arm64.
	GOOS, GOARCH string
	// Progress, when set, receives a line when the build starts and ends.
	Progress io.Writer
	// CacheDir overrides the cache directory ($CORTEX_CACHE, else
	// $XDG_CACHE_HOME/cortex, else ~/.cache/cortex).
	CacheDir string
	// NoCache builds even when a binary for the same inputs is cached.
	NoCache bool
	// CortexDir is the directory of the cortex module to build in when the
	// function is not inside a module that requires it. Empty means: find
	// it (see the package documentation).
	CortexDir string
	// Go is the go command; empty means "go" from PATH.
	Go string
}

// Result is a built binary.
type Result struct {
	// Path is the executable. It lives in the cache: copy it before
	// changing it.
	Path string
	// Cached reports whether the binary came from the cache.
	Cached bool
	// Duration is how long Binary took.
	Duration time.Duration
	// Cgo reports whether the binary was built with cgo: a dependency
	// outside the standard library has cgo files (the ONNX Runtime binding
	// does). Such a binary needs the C library at run time.
	Cgo bool
	// ONNXRuntime reports whether the binary links ONNX Runtime (a type onnx
	// function, or a Go predictor that uses runtime/onnx), so that
	// libonnxruntime.so.1 must ship beside it.
	ONNXRuntime bool
}

// onnxBinding is the module whose presence among a function's dependencies
// means it loads ONNX Runtime.
const onnxBinding = "github.com/yalue/onnxruntime_go"

// Error is a build failure the user can act on: Message says what to do,
// Output is the compiler's own text.
type Error struct {
	Function string
	Message  string
	Output   string
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "building %s: %s", e.Function, e.Message)
	if out := strings.TrimSpace(e.Output); out != "" {
		b.WriteString("\n")
		for _, line := range strings.Split(out, "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *Error) Unwrap() error { return e.Err }

// mainFile is the generated main's file name; compiler messages that name
// it are about the Go contract, not the user's code.
const mainFile = "cortex_main.go"

// Binary builds the function's executable, or returns the cached one.
func Binary(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	if o.Spec == nil {
		return Result{}, errors.New("build: no spec")
	}
	s := o.Spec
	if o.GOOS == "" {
		o.GOOS = goruntime.GOOS
	}
	if o.GOARCH == "" {
		o.GOARCH = goruntime.GOARCH
	}
	if o.Go == "" {
		o.Go = "go"
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return Result{}, err
	}
	fail := func(msg string, err error, out string) error {
		return &Error{Function: s.Name, Message: msg, Output: out, Err: err}
	}

	plan, err := planBuild(ctx, o, dir)
	if err != nil {
		return Result{}, fail(err.Error(), err, "")
	}

	var mainSrc bytes.Buffer
	if err := mainTemplate.Execute(&mainSrc, plan); err != nil {
		return Result{}, err
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-tags", "lambda.norpc"}

	tmp, err := os.MkdirTemp("", "cortex-build-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	overlay := map[string]string{filepath.Join(plan.virtualDir, mainFile): filepath.Join(tmp, mainFile)}
	if err := os.WriteFile(filepath.Join(tmp, mainFile), mainSrc.Bytes(), 0o644); err != nil {
		return Result{}, err
	}
	for virtual, real := range plan.overlay {
		overlay[virtual] = real
	}
	ov, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		return Result{}, err
	}
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return Result{}, err
	}
	pkg := "./" + filepath.ToSlash(mustRel(plan.moduleDir, plan.virtualDir))

	// cgo only when a dependency needs it, so a pure-Go function stays a
	// static binary that runs on a scratch-like base.
	deps, err := listDeps(ctx, o, plan.moduleDir, ovPath, pkg)
	if err != nil {
		return Result{}, fail(err.Error(), err, "")
	}
	env := []string{"GOOS=" + o.GOOS, "GOARCH=" + o.GOARCH, "CGO_ENABLED=0"}
	cgo, ort := deps.cgo, deps.onnx
	if cgo {
		env[2] = "CGO_ENABLED=1"
		cc, err := crossCompiler(o.GOOS, o.GOARCH)
		if err != nil {
			return Result{}, fail(err.Error(), err, "")
		}
		if cc != "" {
			env = append(env, "CC="+cc)
		}
	}

	key, err := cacheKey(ctx, o, plan.moduleDir, overlay, deps, args, env)
	if err != nil {
		return Result{}, err
	}
	cacheDir, err := CacheRoot(o.CacheDir)
	if err != nil {
		return Result{}, err
	}
	outDir := filepath.Join(cacheDir, "bin", key)
	out := filepath.Join(outDir, s.Name)
	if !o.NoCache {
		if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() {
			progress(o.Progress, "using the cached %s binary (%s/%s)\n", s.Name, o.GOOS, o.GOARCH)
			return Result{Path: out, Cached: true, Duration: time.Since(start), Cgo: cgo, ONNXRuntime: ort}, nil
		}
	}
	progress(o.Progress, "building %s (type %s) for %s/%s\n", s.Name, s.Predictor.Type, o.GOOS, o.GOARCH)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("creating the binary cache: %w", err)
	}
	partial := filepath.Join(outDir, "."+s.Name+".partial-"+filepath.Base(tmp))
	cmdArgs := append(slices.Clone(args), "-overlay", ovPath, "-o", partial, pkg)
	cmd := exec.CommandContext(ctx, o.Go, cmdArgs...)
	cmd.Dir = plan.moduleDir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(partial)
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			return Result{}, fail("the go command is needed to build a function: install Go from go.dev/dl", err, "")
		}
		return Result{}, explain(s, plan, stderr.String(), err)
	}
	if err := os.Rename(partial, out); err != nil {
		return Result{}, err
	}
	d := time.Since(start)
	progress(o.Progress, "built %s in %s\n", s.Name, d.Round(100*time.Millisecond))
	return Result{Path: out, Duration: d, Cgo: cgo, ONNXRuntime: ort}, nil
}

func progress(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

func mustRel(base, target string) string {
	r, err := filepath.Rel(base, target)
	if err != nil {
		return target
	}
	return r
}

// WriteConfig writes a runtime configuration (see RuntimeConfig) as JSON to
// path, creating its directory.
func WriteConfig(cfg runtime.Config, path string) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the runtime config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// crossCompiler returns the C compiler a cgo build for goos/goarch needs
// when it differs from the host, or an error saying what to install.
func crossCompiler(goos, goarch string) (string, error) {
	if goos == goruntime.GOOS && goarch == goruntime.GOARCH {
		return "", nil
	}
	if cc := os.Getenv("CC"); cc != "" {
		return cc, nil
	}
	if goos != "linux" {
		return "", fmt.Errorf("an onnx function uses cgo and cannot be cross-built for %s/%s from %s/%s; build it on %s or set CC to a cross C compiler", goos, goarch, goruntime.GOOS, goruntime.GOARCH, goos)
	}
	names := map[string]struct{ cc, pkg string }{
		"arm64": {"aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"},
		"amd64": {"x86_64-linux-gnu-gcc", "gcc-x86-64-linux-gnu"},
	}
	n, ok := names[goarch]
	if !ok {
		return "", fmt.Errorf("an onnx function uses cgo; set CC to a C compiler for linux/%s", goarch)
	}
	if _, err := exec.LookPath(n.cc); err != nil {
		return "", fmt.Errorf("an onnx function uses cgo, so building it for linux/%s on %s/%s needs the C cross compiler %s, which is not on PATH: install it (Debian/Ubuntu: apt-get install %s) or set CC", goarch, goruntime.GOOS, goruntime.GOARCH, n.cc, n.pkg)
	}
	return n.cc, nil
}

// plan says where the generated main goes and what it imports.
type plan struct {
	// moduleDir is the root of the module that builds the binary.
	moduleDir string
	// virtualDir is the (virtual) directory of the generated main.
	virtualDir string
	// overlay maps further virtual files to real ones (a predictor package
	// placed inside the cortex module).
	overlay map[string]string
	// Type is the predictor type; Import the predictor package's import path.
	Type, Import string
	// Repository holds the onnx.RepositoryOption expressions of a
	// multi-model onnx function, empty for a single model.
	Repository []string
}

// repositoryOptions turns predictor.models, models_dir, cache_size,
// poll_interval and default_model into Go expressions for the generated
// main. Paths stay relative: the repository resolves them against the
// function's directory at Init, wherever the function is shipped.
func repositoryOptions(p spec.Predictor) []string {
	if p.Type != spec.TypeONNX || !p.MultiModel() {
		return nil
	}
	var opts []string
	for _, m := range p.Models {
		opts = append(opts, fmt.Sprintf("onnx.WithModel(%s, %s)", strconv.Quote(m.Name), strconv.Quote(filepath.ToSlash(m.Path))))
	}
	if p.ModelsDir != "" {
		opts = append(opts, fmt.Sprintf("onnx.WithModelsDir(%s)", strconv.Quote(filepath.ToSlash(p.ModelsDir))))
	}
	if p.CacheSize > 0 {
		opts = append(opts, fmt.Sprintf("onnx.WithCacheSize(%d)", p.CacheSize))
	}
	if p.PollInterval > 0 {
		opts = append(opts, fmt.Sprintf("onnx.WithPollInterval(%d) /* %s */", int64(p.PollInterval), p.PollInterval))
	}
	if p.DefaultModel != "" {
		opts = append(opts, fmt.Sprintf("onnx.WithDefaultModel(%s)", strconv.Quote(p.DefaultModel)))
	}
	return opts
}

func planBuild(ctx context.Context, o Options, dir string) (*plan, error) {
	s := o.Spec
	p := &plan{Type: s.Predictor.Type, Repository: repositoryOptions(s.Predictor), overlay: map[string]string{}}
	modDir, modPath, _ := findModule(dir)
	usable := false
	switch {
	case modPath == CortexModule:
		usable = true
	case modDir != "":
		// A module that requires cortex (directly or via replace) builds its
		// own functions.
		cmd := exec.CommandContext(ctx, o.Go, "list", "-m", "-f", "{{.Path}}", CortexModule)
		cmd.Dir = modDir
		usable = cmd.Run() == nil
	}
	if usable {
		p.moduleDir = modDir
		p.virtualDir = filepath.Join(dir, "_cortexmain")
		if p.Type == spec.TypeGo {
			pkgDir := filepath.Join(dir, filepath.FromSlash(s.Predictor.Path))
			cmd := exec.CommandContext(ctx, o.Go, "list", "-f", "{{.ImportPath}}", pkgDir)
			cmd.Dir = modDir
			var errb bytes.Buffer
			cmd.Stderr = &errb
			outb, err := cmd.Output()
			if err != nil {
				return nil, fmt.Errorf("predictor.path %s is not a Go package of module %s: %s", s.Predictor.Path, modPath, strings.TrimSpace(errb.String()))
			}
			p.Import = strings.TrimSpace(string(outb))
		}
		return p, nil
	}

	cortexDir, err := locateCortex(ctx, o)
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256([]byte(dir))
	p.moduleDir = cortexDir
	p.virtualDir = filepath.Join(cortexDir, "_cortexbuild", hex.EncodeToString(id[:6]))
	if p.Type == spec.TypeGo {
		pkgDir := filepath.Join(dir, filepath.FromSlash(s.Predictor.Path))
		entries, err := os.ReadDir(pkgDir)
		if err != nil {
			return nil, fmt.Errorf("reading predictor.path: %w", err)
		}
		for _, e := range entries {
			if n := e.Name(); e.Type().IsRegular() && strings.HasSuffix(n, ".go") {
				p.overlay[filepath.Join(p.virtualDir, "predictor", n)] = filepath.Join(pkgDir, n)
			}
		}
		p.Import = CortexModule + "/" + filepath.ToSlash(mustRel(cortexDir, filepath.Join(p.virtualDir, "predictor")))
	}
	return p, nil
}

// findModule walks up from dir to the nearest go.mod and returns its
// directory and module path.
func findModule(dir string) (modDir, modPath string, err error) {
	for d := dir; ; {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			return d, modulePath(b), nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", "", fs.ErrNotExist
		}
		d = parent
	}
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

func isWithin(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

// locateCortex finds a directory holding the cortex module: Options,
// then the current directory and its parents, then the module cache at the
// running CLI's version.
func locateCortex(ctx context.Context, o Options) (string, error) {
	if o.CortexDir != "" {
		return filepath.Abs(o.CortexDir)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(b) == CortexModule {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	version := ""
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == CortexModule && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	if version == "" {
		return "", errors.New("cannot find the cortex module to build this function with: the function directory is not in a Go module that requires " + CortexModule + ", and neither the current directory nor the CLI's build names one; run from a cortex checkout, or add a go.mod that requires " + CortexModule)
	}
	cmd := exec.CommandContext(ctx, o.Go, "mod", "download", "-json", CortexModule+"@"+version)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); err != nil || jerr != nil || info.Dir == "" {
		return "", fmt.Errorf("downloading %s@%s to build with: %s%s", CortexModule, version, info.Error, strings.TrimSpace(errb.String()))
	}
	return info.Dir, nil
}

// CacheRoot returns the cortex cache directory: override when set, else
// $CORTEX_CACHE, else cortex under the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache). runtime/onnx keeps the same rule (it may
// not import the packager).
func CacheRoot(override string) (string, error) {
	if override != "" {
		return override, nil
	}
	if d := os.Getenv("CORTEX_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "cortex"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set CORTEX_CACHE: %w", err)
	}
	return filepath.Join(home, ".cache", "cortex"), nil
}

// cacheKey hashes everything that decides the binary's bytes: the flags,
// the Go toolchain, the overlaid files (the generated main, an overlaid
// predictor package) and the sources of every non-standard package the
// binary depends on, as `go list -deps` names them. Packages in the module
// cache are immutable, so their directory (which holds the version) stands
// for their content.
func cacheKey(ctx context.Context, o Options, moduleDir string, overlay map[string]string, deps deps, args, env []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "cortex-build v1\x00%q\x00%q\x00%s\x00%s\x00", args, env, os.Getenv("CC"), os.Getenv("GOFLAGS"))
	goEnv := exec.CommandContext(ctx, o.Go, "env", "GOVERSION", "GOROOT", "GOEXPERIMENT", "GOMODCACHE", "CGO_CFLAGS", "CGO_LDFLAGS")
	goEnv.Env = append(os.Environ(), env...)
	ge, err := goEnv.Output()
	if err != nil {
		return "", fmt.Errorf("running %s env: %w", o.Go, err)
	}
	h.Write(ge)
	modCache := strings.Split(string(ge), "\n")[3]
	for _, virtual := range slices.Sorted(maps.Keys(overlay)) {
		b, err := os.ReadFile(overlay[virtual])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "overlay %s %d\x00", virtual, len(b))
		h.Write(b)
	}
	for _, f := range []string{"go.mod", "go.sum", "go.work", "go.work.sum"} {
		if b, err := os.ReadFile(filepath.Join(moduleDir, f)); err == nil {
			fmt.Fprintf(h, "%s %d\x00", f, len(b))
			h.Write(b)
		}
	}
	for _, line := range deps.packages {
		fields := strings.Split(line, "\t")
		dir := fields[0]
		if modCache != "" && isWithin(modCache, dir) {
			fmt.Fprintf(h, "module %s\x00", dir)
			continue
		}
		if err := hashPackage(h, dir, fields[1:]); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// deps is what one `go list -deps` says of a function's packages.
type deps struct {
	// packages are the non-standard packages, each "dir\tembed...".
	packages []string
	// cgo reports whether one of them has cgo files; onnx whether the ONNX
	// Runtime binding is among them.
	cgo, onnx bool
}

// listDeps lists pkg's dependencies once, with cgo on, for both the cgo
// decision and the cache key: with cgo on the list is a superset of the
// directories a cgo-off build reads, so the key covers either build.
func listDeps(ctx context.Context, o Options, moduleDir, ovPath, pkg string) (deps, error) {
	list := exec.CommandContext(ctx, o.Go, "list", "-e", "-deps", "-overlay", ovPath, "-tags", "lambda.norpc",
		"-f", "{{if not .Standard}}{{.ImportPath}}\t{{if .CgoFiles}}cgo{{end}}\t{{.Dir}}{{range .EmbedFiles}}\t{{.}}{{end}}{{end}}", pkg)
	list.Dir = moduleDir
	list.Env = append(os.Environ(), "GOOS="+o.GOOS, "GOARCH="+o.GOARCH, "CGO_ENABLED=1")
	var errb bytes.Buffer
	list.Stderr = &errb
	out, err := list.Output()
	if err != nil {
		return deps{}, fmt.Errorf("listing the packages of %s: %v: %s", o.Spec.Name, err, strings.TrimSpace(errb.String()))
	}
	var d deps
	for _, line := range strings.Split(string(out), "\n") {
		path, rest, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		flag, pkgLine, _ := strings.Cut(rest, "\t")
		if flag == "cgo" {
			d.cgo = true
			if path == onnxBinding || strings.HasPrefix(path, onnxBinding+"/") {
				d.onnx = true
			}
		}
		d.packages = append(d.packages, pkgLine)
	}
	return d, nil
}

// hashPackage hashes the name and content of every file in one package
// directory that can change a build: Go, cgo and assembly sources and the
// files it embeds. A directory that exists only in the overlay is skipped
// (its files were hashed as overlay files).
func hashPackage(h io.Writer, dir string, embeds []string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "package %s\x00", dir)
	var files []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(name, "_test.go") {
			continue
		}
		switch filepath.Ext(name) {
		case ".go", ".c", ".h", ".s", ".S", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".syso":
			files = append(files, name)
		}
	}
	files = append(files, embeds...)
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\x00", name, len(b))
		h.Write(b)
	}
	return nil
}

var mainTemplate = template.Must(template.New("main").Parse(`// Code generated by cortex build. DO NOT EDIT.

package main

import (
{{- if eq .Type "onnx"}}
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

func main() {
{{- if .Repository}}
	// Several models (predictor.models or predictor.models_dir).
	var p functions.Predictor = onnx.NewRepository(
{{- range .Repository}}
		{{.}},
{{- end}}
	)
{{- else}}
	var p functions.Predictor = onnx.New()
{{- end}}
	runtime.Main(p)
}
{{- else}}
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"

	predictor "{{.Import}}"
)

func main() {
	// The Go contract: the predictor package exports func New() functions.Predictor.
	var p functions.Predictor = predictor.New()
	runtime.Main(p)
}
{{- end}}
`))

// explain turns a failed go build into a message about the Go contract
// when the generated main is what failed, and passes the compiler's text
// through otherwise.
func explain(s *spec.Spec, p *plan, out string, err error) error {
	e := &Error{Function: s.Name, Output: out, Err: err}
	pkg := "predictor.path " + s.Predictor.Path
	var contract []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, mainFile) {
			contract = append(contract, line)
		}
	}
	joined := strings.Join(contract, "\n")
	switch {
	case strings.Contains(out, "is a program, not an importable package"):
		e.Message = pkg + " is package main; it must be a library package that exports func New() functions.Predictor (cortex writes the main)"
	case len(contract) == 0:
		e.Message = "the Go code does not compile"
	case s.Predictor.Type == spec.TypeONNX:
		e.Message = "the built-in onnx predictor does not build with this cortex version"
	case strings.Contains(joined, "undefined: predictor.New"):
		e.Message = pkg + " does not export func New() functions.Predictor; add one that returns the predictor"
	case strings.Contains(joined, "assignment mismatch"), strings.Contains(joined, "multiple-value"):
		e.Message = pkg + ": New must return exactly one value, a functions.Predictor (return errors from Init, not New)"
	case strings.Contains(joined, "not enough arguments"), strings.Contains(joined, "too many arguments"):
		e.Message = pkg + ": New must take no arguments (read settings in Init from functions.Config.Values)"
	case strings.Contains(joined, "does not implement"), strings.Contains(joined, "cannot use"):
		e.Message = pkg + ": New must return a functions.Predictor, a type with Predict(ctx context.Context, req *functions.Request) (*functions.Response, error)"
	case strings.Contains(joined, "is not a function"), strings.Contains(joined, "is not a type"), strings.Contains(joined, "(no value) used as value"), strings.Contains(joined, "cannot call non-function"):
		e.Message = pkg + ": New must be a function, func New() functions.Predictor"
	default:
		e.Message = pkg + " does not meet the Go contract, func New() functions.Predictor"
	}
	return e
}
