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
// path inside the module that builds it (see locate):
//
//   - inside a cortex checkout (the samples): that checkout;
//   - a Go predictor in a module of the user's: that module, its go.mod
//     authoritative for the user's own dependencies, with cortex required at
//     the CLI's version and replaced by the CLI's SDK through a copy of
//     go.mod and go.sum passed with -modfile (a go.mod that requires another
//     cortex version is a VersionError naming both and the fix);
//   - anything else (no Go code, or a predictor package with no go.mod):
//     the SDK embedded in the CLI (see ExtractSDK and the root package
//     cortex), with the predictor package overlaid into it, so such a
//     package may import only the standard library and cortex.
//
// So the CLI needs neither this repository nor a published module: a
// function builds against the SDK of the CLI that builds it, and a no-code
// function builds offline once the modules in sdk.mod are in the module
// cache.
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
// invalidate it. Options.NoCache forces a build. The cache is a decorator
// (cache) around the compiler (goBuild), as ko's caching builder wraps its
// builder: a prepared job carries its key, and the compiler knows nothing
// of the cache.
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
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/cortexfn/cortex"
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
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return Result{}, err
	}
	fail := func(msg string, err error, out string) error {
		return &Error{Function: s.Name, Message: msg, Output: out, Err: err}
	}
	tmp, err := os.MkdirTemp("", "cortex-build-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)

	plan, err := planBuild(o, dir, tmp)
	if err != nil {
		var ve *VersionError
		if errors.As(err, &ve) {
			return Result{}, fail(ve.Error(), err, "")
		}
		return Result{}, fail(err.Error(), err, "")
	}
	var mainSrc bytes.Buffer
	if err := mainTemplate.Execute(&mainSrc, plan); err != nil {
		return Result{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, mainFile), mainSrc.Bytes(), 0o644); err != nil {
		return Result{}, err
	}
	plan.overlay[filepath.Join(plan.virtualDir, mainFile)] = filepath.Join(tmp, mainFile)

	c := compilation{
		Options: o, m: plan.module, tmp: tmp, pkgDir: plan.virtualDir, name: s.Name, kind: "bin",
		args: []string{"-trimpath", "-ldflags=-s -w", "-tags", "lambda.norpc"},
		// cgo only when a dependency needs it, so a pure-Go function stays a
		// static binary that runs on a scratch-like base.
		cgo: true,
	}
	out, cached, deps, err := c.run(ctx, func() {
		progress(o.Progress, "building %s (type %s) for %s/%s\n", s.Name, s.Predictor.Type, o.GOOS, o.GOARCH)
	})
	if err != nil {
		var ce *compileError
		switch {
		case errors.As(err, &ce):
			return Result{}, explain(s, plan, ce.output, ce.err)
		case ctx.Err() != nil:
			return Result{}, ctx.Err()
		default:
			return Result{}, fail(err.Error(), err, "")
		}
	}
	r := Result{Path: out, Cached: cached, Duration: time.Since(start), Cgo: deps.cgo, ONNXRuntime: deps.onnx}
	if cached {
		progress(o.Progress, "using the cached %s binary (%s/%s)\n", s.Name, o.GOOS, o.GOARCH)
	} else {
		progress(o.Progress, "built %s in %s\n", s.Name, r.Duration.Round(100*time.Millisecond))
	}
	return r, nil
}

// compilation is one go build of a package of a located module, cached in
// the cortex cache by everything that decides its bytes.
type compilation struct {
	Options
	m *module
	// tmp holds the overlay file; pkgDir is the package to build (real or
	// virtual, inside m.dir); name the output file's name; kind the cache
	// subdirectory (bin, wasm).
	tmp, pkgDir, name, kind string
	// args are the build flags that decide the output.
	args []string
	// cgo allows cgo when a dependency has cgo files.
	cgo bool
}

// compileError is a go build that failed: output is the compiler's text.
type compileError struct {
	output string
	err    error
}

func (e *compileError) Error() string {
	return fmt.Sprintf("%v\n%s", e.err, strings.TrimSpace(e.output))
}
func (e *compileError) Unwrap() error { return e.err }

// run builds, or finds the cached output; starting is called before a
// build that is not cached. It prepares the job (its dependencies, the cgo
// decision, the environment and the cache key), then hands it to the
// compiler: go build, wrapped in the cache unless NoCache asks for a
// fresh build (whose output is still kept in the cache, where the caller
// reads it).
func (c compilation) run(ctx context.Context, starting func()) (out string, cached bool, d deps, err error) {
	j, err := c.prepare(ctx)
	if err != nil {
		return "", false, j.deps, err
	}
	cacheDir, err := CacheRoot(c.CacheDir)
	if err != nil {
		return "", false, j.deps, err
	}
	var comp compiler = goBuild{starting: starting}
	comp = cache{next: comp, dir: cacheDir, refresh: c.NoCache}
	out, cached, err = comp.compile(ctx, j)
	return out, cached, j.deps, err
}

// job is one go build, ready to run: everything that decides its bytes is
// settled, and key names them.
type job struct {
	goCmd  string
	m      *module
	ovPath string
	pkg    string
	args   []string
	env    []string
	deps   deps
	name   string
	kind   string
	tmp    string
	key    string
	// out is where the compiler writes; empty means the temporary
	// directory. A decorator that keeps outputs sets it to its own place.
	out string
}

// prepare writes the overlay, lists the dependencies, decides cgo and
// computes the cache key.
func (c compilation) prepare(ctx context.Context) (*job, error) {
	j := &job{goCmd: c.Go, m: c.m, name: c.name, kind: c.kind, tmp: c.tmp, args: c.args}
	if j.goCmd == "" {
		j.goCmd = "go"
	}
	ov, err := json.Marshal(map[string]any{"Replace": c.m.overlay})
	if err != nil {
		return j, err
	}
	j.ovPath = filepath.Join(c.tmp, "overlay-"+c.kind+".json")
	if err := os.WriteFile(j.ovPath, ov, 0o644); err != nil {
		return j, err
	}
	j.pkg = "./" + filepath.ToSlash(mustRel(c.m.dir, c.pkgDir))
	if j.deps, err = listDeps(ctx, j.goCmd, c.m, j.ovPath, j.pkg, c.GOOS, c.GOARCH); err != nil {
		return j, err
	}
	// GOWORK=off: a go.work of the user's (cortex init writes one for
	// editors) must not change what the function builds with.
	j.env = []string{"GOOS=" + c.GOOS, "GOARCH=" + c.GOARCH, "CGO_ENABLED=0", "GOWORK=off"}
	if c.cgo && j.deps.cgo {
		j.env[2] = "CGO_ENABLED=1"
		cc, err := crossCompiler(c.GOOS, c.GOARCH)
		if err != nil {
			return j, err
		}
		if cc != "" {
			j.env = append(j.env, "CC="+cc)
		}
	} else {
		j.deps.cgo = false
	}
	j.key, err = cacheKey(ctx, j.goCmd, c.m, j.deps, append([]string{c.kind}, c.args...), j.env)
	return j, err
}

// A compiler turns a prepared job into an output file. goBuild runs the go
// command; cache decorates any compiler, as ko's caching builder does.
type compiler interface {
	compile(ctx context.Context, j *job) (out string, cached bool, err error)
}

// goBuild runs go build into the job's temporary directory.
type goBuild struct {
	// starting is called before the go command runs.
	starting func()
}

func (g goBuild) compile(ctx context.Context, j *job) (string, bool, error) {
	if g.starting != nil {
		g.starting()
	}
	out := j.out
	if out == "" {
		out = filepath.Join(j.tmp, "out-"+j.kind, j.name)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return "", false, err
		}
	}
	args := append([]string{"build"}, j.args...)
	args = append(args, j.m.flags...)
	args = append(args, "-overlay", j.ovPath, "-o", out, j.pkg)
	cmd := exec.CommandContext(ctx, j.goCmd, args...)
	cmd.Dir = j.m.dir
	cmd.Env = append(os.Environ(), j.env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", false, ctx.Err()
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			return "", false, errors.New("the go command is needed to build a function: install Go from go.dev/dl")
		}
		return "", false, &compileError{output: stderr.String(), err: err}
	}
	return out, false, nil
}

// cache keeps outputs in dir/<kind>/<key>/<name>: a job whose output is
// there is not compiled again (unless refresh), and a compiled output is
// moved in with one rename, so a reader never sees a partial file. Entries
// unused for days, or past the kind's size bound, are trimmed (trim.go).
type cache struct {
	next    compiler
	dir     string
	refresh bool
}

func (c cache) compile(ctx context.Context, j *job) (string, bool, error) {
	outDir := filepath.Join(c.dir, j.kind, j.key)
	out := filepath.Join(outDir, j.name)
	if !c.refresh {
		if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() {
			touch(outDir, time.Now())
			return out, true, nil
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", false, fmt.Errorf("creating the build cache: %w", err)
	}
	// The compiler writes beside the cached name; one rename publishes it.
	partial := *j
	partial.out = filepath.Join(outDir, "."+j.name+".partial-"+filepath.Base(j.tmp))
	built, _, err := c.next.compile(ctx, &partial)
	if err == nil {
		err = os.Rename(built, out)
	}
	if err != nil {
		os.Remove(partial.out)
		return "", false, err
	}
	// A new entry: the kind's unused ones may go (trim.go).
	trim(filepath.Join(c.dir, j.kind), time.Now())
	return out, false, nil
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
		return "", fmt.Errorf("an onnx function uses cgo, so building it for linux/%s on %s/%s needs the C cross compiler %s, which is not on PATH: install it with `apt-get install %s libc6-dev-%s-cross` (Debian/Ubuntu; `make tools` in a cortex checkout does) or set CC", goarch, goruntime.GOOS, goruntime.GOARCH, n.cc, n.pkg, goarch)
	}
	return n.cc, nil
}

// plan says where the generated main goes and what it imports.
type plan struct {
	*module
	// Type is the predictor type; Import the predictor package's import path.
	Type, Import string
	// Repository holds the onnx.RepositoryOption expressions of a
	// multi-model onnx function, empty for a single model.
	Repository []string
	// Fetchers are the model fetchers the main blank-imports: one per
	// scheme of reference the spec names besides https:// (built into
	// the runtime), so a function without oci:// or s3:// models links
	// neither go-containerregistry nor the AWS SDK.
	Fetchers []string
}

// fetchers returns the import paths of the model fetchers the spec's
// references need.
func fetchers(p spec.Predictor) []string {
	var out []string
	for _, scheme := range []string{"oci", "s3"} {
		for _, r := range p.ModelReferences() {
			if strings.HasPrefix(r, scheme+"://") {
				out = append(out, CortexModule+"/runtime/modelfetch/"+scheme)
				break
			}
		}
	}
	return out
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
		if spec.IsModelReference(m.Path) {
			// The runtime fetches it at start and links it here.
			opts = append(opts, fmt.Sprintf("onnx.WithModel(%s, runtime.ModelPath(%s))", strconv.Quote(m.Name), strconv.Quote(m.Path)))
			continue
		}
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

func planBuild(o Options, dir, tmp string) (*plan, error) {
	s := o.Spec
	pkgRel := ""
	if s.Predictor.Type == spec.TypeGo {
		pkgRel = s.Predictor.Path
	}
	m, err := locate(o, dir, pkgRel, tmp)
	if err != nil {
		if pkgRel != "" && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("predictor.path %s: %w", pkgRel, err)
		}
		return nil, err
	}
	return &plan{module: m, Type: s.Predictor.Type, Import: m.pkgImport, Repository: repositoryOptions(s.Predictor), Fetchers: fetchers(s.Predictor)}, nil
}

// CacheRoot returns the cortex cache directory: override when set, else
// $CORTEX_CACHE, else cortex under the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache). runtime/onnx keeps the same rule (it may
// not import the packager).
func CacheRoot(override string) (string, error) {
	root := override
	switch {
	case root != "":
	case os.Getenv("CORTEX_CACHE") != "":
		root = os.Getenv("CORTEX_CACHE")
	case os.Getenv("XDG_CACHE_HOME") != "":
		root = filepath.Join(os.Getenv("XDG_CACHE_HOME"), "cortex")
	default:
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory: set CORTEX_CACHE: %w", err)
		}
		root = filepath.Join(home, ".cache", "cortex")
	}
	// Absolute: builds run the go command in other directories, and paths
	// under the cache are handed to other processes and written into files
	// (go.work).
	return filepath.Abs(root)
}

// cacheKey hashes everything that decides a build's bytes: the flags, the
// Go toolchain, the go.mod and go.sum the build reads, the overlaid files
// (the generated main, an overlaid package) and the sources of every
// non-standard package it depends on, as `go list -deps` names them.
// Packages in the module cache are immutable, so their directory (which
// holds the version) stands for their content.
func cacheKey(ctx context.Context, goCmd string, m *module, deps deps, args, env []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "cortex-build v2\x00%q\x00%q\x00%s\x00%s\x00", args, env, os.Getenv("CC"), os.Getenv("GOFLAGS"))
	goEnv := exec.CommandContext(ctx, goCmd, "env", "GOVERSION", "GOROOT", "GOEXPERIMENT", "GOMODCACHE", "CGO_CFLAGS", "CGO_LDFLAGS")
	goEnv.Env = append(os.Environ(), env...)
	ge, err := goEnv.Output()
	if err != nil {
		return "", fmt.Errorf("running %s env: %w", goCmd, err)
	}
	h.Write(ge)
	modCache := strings.Split(string(ge), "\n")[3]
	for _, virtual := range slices.Sorted(maps.Keys(m.overlay)) {
		b, err := os.ReadFile(m.overlay[virtual])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "overlay %s %d\x00", m.keyPath(virtual), len(b))
		h.Write(b)
	}
	for _, f := range m.modFiles {
		if b, err := os.ReadFile(f); err == nil {
			fmt.Fprintf(h, "%s %d\x00", filepath.Base(f), len(b))
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
		if err := hashPackage(h, dir, m.keyPath(dir), fields[1:]); err != nil {
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
func listDeps(ctx context.Context, goCmd string, m *module, ovPath, pkg, goos, goarch string) (deps, error) {
	args := append([]string{"list", "-e", "-deps"}, m.flags...)
	args = append(args, "-overlay", ovPath, "-tags", "lambda.norpc",
		"-f", "{{if not .Standard}}{{.ImportPath}}\t{{if .CgoFiles}}cgo{{end}}\t{{.Dir}}{{range .EmbedFiles}}\t{{.}}{{end}}{{end}}", pkg)
	list := exec.CommandContext(ctx, goCmd, args...)
	list.Dir = m.dir
	list.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=1", "GOWORK=off")
	var errb bytes.Buffer
	list.Stderr = &errb
	out, err := list.Output()
	if err != nil {
		return deps{}, fmt.Errorf("listing the packages of %s: %v: %s", pkg, err, strings.TrimSpace(errb.String()))
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

// keyPath is p as a build's cache key records it: relative to the
// module's directory when inside it, so that where a checkout or a copy
// of a function is does not change the key (every build is -trimpath, so
// it does not change the binary either); other paths (the SDK's, a
// replace directive's) as they are.
func (m *module) keyPath(p string) string {
	if rel, err := filepath.Rel(m.dir, p); err == nil && filepath.IsLocal(rel) {
		return "module/" + filepath.ToSlash(rel)
	}
	return p
}

// hashPackage hashes the name and content of every file in one package
// directory that can change a build: Go, cgo and assembly sources and the
// files it embeds, under key, the package's name in the key (keyPath). A
// directory that exists only in the overlay is skipped (its files were
// hashed as overlay files).
func hashPackage(h io.Writer, dir, key string, embeds []string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "package %s\x00", key)
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
{{- range .Fetchers}}
	_ "{{.}}"
{{- end}}
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
{{- range .Fetchers}}
	_ "{{.}}"
{{- end}}

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
	case p.inSDK && p.pkgDir != "" && (strings.Contains(out, "no required module provides package") || strings.Contains(out, "cannot find module providing package")):
		e.Message = fmt.Sprintf("%s imports a module outside the standard library and cortex, and the function has no go.mod to say which version: "+
			"add one in %s (`go mod init %s && go mod edit -require=%s@%s`, then `go get` the module); a function without a go.mod builds against cortex's SDK alone",
			pkg, s.Dir, s.Name, CortexModule, cortex.Version)
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
