// Package packager turns a function directory into everything a deploy
// needs, with no Docker daemon: `cortex package` is a thin wrapper around
// Package.
//
// Package loads cortex.yaml (packager/spec), builds the function binary
// (packager/build), writes the runtime configuration, assembles the OCI
// image (packager/oci), the Lambda zip and SAM template
// (packager/lambdazip) and the Knative Service (packager/knative), and
// moves them into the output directory in one rename, so a failure never
// leaves a half-written dist/:
//
//	dist/
//	  oci/            OCI image layout, tagged Options.Tag (skopeo, umoci, crane read it)
//	  image.tar       the same image for `docker load` / `podman load`
//	  lambda.zip      bootstrap at the root (0755), lib/, the model, cortex.json
//	  template.yaml   AWS SAM template: the function and its function URL
//	  knative.yaml    serving.knative.dev/v1 Service, image by digest
//	  summary.json    the Result, as --output json prints it
//
// # Image layout
//
// Layers go from least to most often changed, so a code change re-uploads
// only the small layers at the end:
//
//	base       built-in: /etc/passwd, /etc/group (uid 65532), CA certificates,
//	           /tmp; for an ONNX (cgo) function also glibc, the loader,
//	           libstdc++ and libgcc_s copied from the build machine (their
//	           Debian package versions are recorded in the history and a label)
//	runtime    /app/lib/libonnxruntime.so.1 (onnx functions only)
//	model      /app/<predictor.model>, streamed from disk, compressed fast
//	wasm       /app/<pre>, /app/<post>
//	binary     /app/<name>
//	config     /app/cortex.json ($CORTEX_CONFIG)
//
// Every layer is a deterministic tar (sorted, parents first, mtime from
// $SOURCE_DATE_EPOCH or 0, uid/gid 0, regular files and directories only),
// so the same inputs give the same digests, and the model layer's digest
// does not move when only code changes.
package packager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/onnxruntime"
	"github.com/cortexfn/cortex/packager/spec"
)

// ONNXRuntimeVersion is the ONNX Runtime release shipped with onnx
// functions; it must match runtime/onnx.Version (a test checks).
const ONNXRuntimeVersion = onnxruntime.Version

// Where things go inside the image.
const (
	AppDir     = "/app"
	ConfigName = "cortex.json"
	// DefaultRepository names the image when no registry is given: the
	// Knative manifest still references it by digest, and a note says to
	// push it.
	DefaultRepository = "cortex.local"
	summaryName       = "summary.json"
)

// Options says how to package. The zero value packages for linux/amd64
// into DIR/dist with gzip layers on the built-in base, and pushes nothing.
type Options struct {
	// Out is the output directory. Default DIR/dist. It is replaced
	// whole; a directory that is not empty and was not written by Package
	// is refused.
	Out string
	// Base is the base image (see oci.Options.Base); empty means the
	// built-in minimal non-root base.
	Base string
	// Compression is oci.Gzip (default) or oci.Zstd.
	Compression oci.Compression
	// Arch is the target GOARCH, amd64 or arm64. Default: the Lambda
	// target's architecture (x86_64, so amd64, unless the spec says arm64).
	Arch string
	// Registry is a repository prefix to push to ("ghcr.io/acme"): the
	// image becomes REGISTRY/NAME:TAG. Empty: no push; the manifests use
	// targets.knative.registry or cortex.local.
	Registry string
	// Tag is the image tag. Default "latest".
	Tag string
	// CacheDir is the cortex cache (binaries and compressed layers).
	// Default $CORTEX_CACHE, else $XDG_CACHE_HOME/cortex, else ~/.cache/cortex.
	CacheDir string
	// NoCache rebuilds the binary and recompresses every layer.
	NoCache bool
	// ONNXRuntime is the path of libonnxruntime.so.1 to ship. Default
	// $CORTEX_ONNXRUNTIME_LIB, else the cache that `cortex setup`
	// fills.
	ONNXRuntime string
	// LambdaLibs is a directory holding libstdc++.so.6 and libgcc_s.so.1
	// built for Lambda's glibc (2.34), shipped in the zip's lib/ for onnx
	// functions. Default: this machine's, when they need no newer glibc.
	LambdaLibs string
	// Created overrides $SOURCE_DATE_EPOCH for every time in the outputs.
	Created time.Time
	// Progress receives a line per step.
	Progress io.Writer
	// RemoteOptions are added to every registry call (pull of the base,
	// push).
	RemoteOptions []remote.Option
}

// Result is what Package made. It marshals to the JSON `cortex package
// --output json` prints.
type Result struct {
	Function string        `json:"function"`
	Dir      string        `json:"dir"`
	Out      string        `json:"out"`
	Binary   BinaryResult  `json:"binary"`
	Image    ImageResult   `json:"image"`
	Lambda   *LambdaResult `json:"lambda,omitempty"`
	Knative  KnativeResult `json:"knative"`
	// Pushed is the pushed image's digest reference, when pushed.
	Pushed string `json:"pushed,omitempty"`
	// Warnings are things the user should act on; the package is usable.
	Warnings []string      `json:"warnings,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// BinaryResult describes the function binary.
type BinaryResult struct {
	Arch   string `json:"arch"`
	Size   int64  `json:"size"`
	Cached bool   `json:"cached"`
}

// ImageResult describes the image.
type ImageResult struct {
	// Ref is the digest reference the manifests use (repo@sha256:...).
	Ref         string          `json:"ref"`
	Tag         string          `json:"tag"`
	Digest      string          `json:"digest"`
	Compression oci.Compression `json:"compression"`
	// Size is the sum of the compressed layers.
	Size        int64           `json:"size"`
	Layout      string          `json:"layout"`
	Tarball     string          `json:"tarball"`
	TarballSize int64           `json:"tarball_size"`
	Base        oci.BaseInfo    `json:"base"`
	Layers      []oci.LayerInfo `json:"layers"`
}

// LambdaResult describes the Lambda zip.
type LambdaResult struct {
	Zip      string `json:"zip"`
	Size     int64  `json:"size"`
	Unzipped int64  `json:"unzipped"`
	SHA256   string `json:"sha256"`
	Template string `json:"template"`
}

// KnativeResult describes the Knative manifest.
type KnativeResult struct {
	Manifest string `json:"manifest"`
	// Features lists the config-features flags the cluster must enable.
	Features []string `json:"features,omitempty"`
}

// Errors about the files a function ships.
var (
	// ErrOutsideDir: a path, or a symbolic link, leads out of the function
	// directory.
	ErrOutsideDir = errors.New("packager: outside the function directory")
	// ErrOutNotDist: Options.Out exists, is not empty, and was not written
	// by Package.
	ErrOutNotDist = errors.New("packager: output directory holds other files")
)

// Package packages the function in dir. See the package documentation.
// The error names what to fix; nothing is left in Out unless all of it
// was written. When only the push fails, Out is complete and the Result
// comes back with the error.
func Package(ctx context.Context, dir string, o Options) (*Result, error) {
	start := time.Now()
	s, err := spec.Load(dir)
	if err != nil {
		return nil, err
	}
	if o.Out == "" {
		o.Out = filepath.Join(s.Dir, "dist")
	}
	if o.Out, err = filepath.Abs(o.Out); err != nil {
		return nil, err
	}
	if o.Tag == "" {
		o.Tag = "latest"
	}
	if o.Compression == "" {
		o.Compression = oci.Gzip
	}
	if o.Compression != oci.Gzip && o.Compression != oci.Zstd {
		return nil, fmt.Errorf("compression %q: use gzip or zstd", o.Compression)
	}
	lambdaArch := map[string]string{spec.ArchX86: "amd64", spec.ArchARM64: "arm64"}
	if o.Arch == "" {
		o.Arch = lambdaArch[s.Targets.Lambda.Arch]
	}
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return nil, fmt.Errorf("architecture %q: use amd64 or arm64", o.Arch)
	}
	if o.CacheDir == "" {
		if o.CacheDir, err = build.CacheRoot(""); err != nil {
			return nil, err
		}
	}
	created := o.Created
	if created.IsZero() {
		if created, err = oci.SourceDateEpoch(); err != nil {
			return nil, err
		}
	}
	if err := checkOut(o.Out); err != nil {
		return nil, err
	}
	// Everything is written into a temporary directory beside Out, then
	// renamed into place; it is made first, so an unwritable output
	// directory is reported before any work is done.
	parent := filepath.Dir(o.Out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the output directory %s: %w", o.Out, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(o.Out)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("cannot write the output directory %s: %w", o.Out, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	r := &Result{Function: s.Name, Dir: s.Dir, Out: o.Out}
	warn := func(format string, args ...any) {
		r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
	}
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}

	// Gather what ships, checking every path before anything is built.
	work, err := os.MkdirTemp("", "cortex-package-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var model []shipped
	// The model layer holds predictor.model, or every model of a
	// multi-model function (predictor.models_dir, predictor.models[].path).
	sources := []struct{ field, rel string }{{"predictor.model", s.Predictor.Model}, {"predictor.models_dir", s.Predictor.ModelsDir}}
	for i, m := range s.Predictor.Models {
		sources = append(sources, struct{ field, rel string }{fmt.Sprintf("predictor.models[%d].path", i), m.Path})
	}
	for _, src := range sources {
		if src.rel == "" {
			continue
		}
		files, err := collect(s.Dir, src.field, src.rel)
		if err != nil {
			return nil, err
		}
		for _, f := range files { // two models may name one file
			if !slices.ContainsFunc(model, func(m shipped) bool { return m.rel == f.rel }) {
				model = append(model, f)
			}
		}
	}
	stages := map[string]string{} // field -> path in the image, relative to /app
	var wasmFiles []shipped
	for _, st := range []struct{ field, rel string }{{"pre", s.Pre}, {"post", s.Post}} {
		if st.rel == "" {
			continue
		}
		files, err := collect(s.Dir, st.field, st.rel)
		if err != nil {
			return nil, err
		}
		if len(files) == 1 && strings.HasSuffix(files[0].rel, ".wasm") {
			wasmFiles = append(wasmFiles, files[0])
			stages[st.field] = files[0].rel
			continue
		}
		// A Go package: compiled for wasip1 (cached).
		out, err := build.Stage(ctx, s.Dir, st.rel, o.CacheDir, o.Progress)
		if err != nil {
			return nil, err
		}
		rel := path.Join("wasm", st.field+".wasm")
		wasmFiles = append(wasmFiles, shipped{rel: rel, src: out})
		stages[st.field] = rel
	}
	// The binary.
	bin, err := build.Binary(ctx, build.Options{
		Dir: s.Dir, Spec: s, GOOS: "linux", GOARCH: o.Arch,
		Progress: o.Progress, CacheDir: o.CacheDir, NoCache: o.NoCache,
	})
	if err != nil {
		return nil, err
	}
	// ONNX Runtime ships with every binary that links it: type onnx, or a
	// Go predictor that uses runtime/onnx.
	onnx := bin.ONNXRuntime
	var ortLib string
	if onnx {
		if ortLib, err = findONNXRuntime(ctx, o.ONNXRuntime, o.CacheDir, o.Arch, o.Progress); err != nil {
			return nil, err
		}
	}
	st, err := os.Stat(bin.Path)
	if err != nil {
		return nil, err
	}
	r.Binary = BinaryResult{Arch: o.Arch, Size: st.Size(), Cached: bin.Cached}

	// The runtime config: paths relative to the config's own directory.
	cfg := s.RuntimeConfig()
	cfg.Dir = ""
	cfg.Pre, cfg.Post = stages["pre"], stages["post"]
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the runtime config: %w", err)
	}
	cfgJSON = append(cfgJSON, '\n')
	specBytes, err := os.ReadFile(filepath.Join(s.Dir, spec.FileName))
	if err != nil {
		return nil, err
	}
	specSum := sha256.Sum256(specBytes)

	// The image.
	app := strings.TrimPrefix(AppDir, "/")
	layer := func(name string, lvl oci.Level, files []shipped) oci.Layer {
		l := oci.Layer{Name: name, Level: lvl}
		for _, f := range files {
			l.Files = append(l.Files, oci.File{Path: path.Join(app, f.rel), Src: f.src, Data: f.data, Mode: f.mode})
		}
		return l
	}
	var runtimeFiles []shipped
	if onnx {
		runtimeFiles = append(runtimeFiles, shipped{rel: "lib/libonnxruntime.so.1", src: ortLib, mode: 0o755})
	}
	binFile := shipped{rel: s.Name, src: bin.Path, mode: 0o755}
	cfgFile := shipped{rel: ConfigName, data: cfgJSON}
	repo := o.Registry
	if repo == "" {
		repo = s.Targets.Knative.Registry
	}
	if repo == "" {
		repo = DefaultRepository
	}
	repo = strings.TrimSuffix(repo, "/") + "/" + s.Name
	labels := map[string]string{
		"org.opencontainers.image.title":       s.Name,
		"org.opencontainers.image.description": "Cortex function " + s.Name + " (" + s.Predictor.Type + " predictor)",
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
		"dev.cortexfn.function":                s.Name,
		"dev.cortexfn.predictor":               s.Predictor.Type,
		"dev.cortexfn.spec.sha256":             hex.EncodeToString(specSum[:]),
	}
	if o.Base != "" {
		labels["org.opencontainers.image.base.name"] = o.Base
	}
	if md := oipMetadata(s); md != "" {
		labels["dev.cortexfn.oip.metadata"] = md
	}
	if s.Compute.GPU > 0 {
		labels["dev.cortexfn.gpu"] = fmt.Sprint(s.Compute.GPU)
	}
	say("assembling the image (%s, %s layers)", o.Arch, o.Compression)
	img, err := oci.Build(ctx, oci.Contents{
		Layers: []oci.Layer{
			layer("runtime", oci.Default, runtimeFiles),
			layer("model", oci.Fast, model),
			layer("wasm", oci.Default, wasmFiles),
			layer("binary", oci.Default, []shipped{binFile}),
			layer("config", oci.Default, []shipped{cfgFile}),
		},
		Entrypoint: []string{path.Join(AppDir, s.Name)},
		Env:        []string{"PORT=" + fmt.Sprint(knative.Port), "CORTEX_CONFIG=" + path.Join(AppDir, ConfigName)},
		WorkingDir: AppDir,
		Labels:     labels,
		CGO:        bin.Cgo,
	}, oci.Options{
		Base: o.Base, Arch: o.Arch, Compression: o.Compression, Created: created,
		CacheDir: o.CacheDir, NoCache: o.NoCache, Progress: o.Progress, RemoteOptions: o.RemoteOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("assembling the image: %w", err)
	}
	defer img.Close()
	r.Warnings = append(r.Warnings, img.Notes...)
	var imgSize int64
	for _, l := range img.Layers {
		imgSize += l.Size
	}
	digestRef := repo + "@" + img.Digest.String()
	r.Image = ImageResult{
		Ref: digestRef, Tag: repo + ":" + o.Tag, Digest: img.Digest.String(), Compression: o.Compression,
		Size: imgSize, Base: img.Base, Layers: img.Layers,
	}
	if s.Compute.GPU > 0 && !img.Base.CUDA {
		warn("compute.gpu is %d: the Knative manifest places the function on GPU nodes, but the image has no CUDA libraries, so the model will run on the CPU there. "+
			"To use the GPU, give a CUDA base image (--base with an nvidia/cuda cudnn runtime image for linux/%s) and put ONNX Runtime's CUDA provider "+
			"(libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so, from an ONNX Runtime GPU release) beside libonnxruntime.so.1", s.Compute.GPU, o.Arch)
	}
	if o.Compression == oci.Zstd {
		warn("the image has zstd layers: Lambda container images need gzip, and containerd < 1.5 or Docker < 23 cannot run it; package without --compression zstd for those")
	}
	switch {
	case repo == DefaultRepository+"/"+s.Name:
		warn("no registry given: the manifests name %s; push with --registry REPO (or set targets.knative.registry) before deploying", digestRef)
	case o.Registry == "":
		warn("not pushed: the Knative manifest names %s (targets.knative.registry); push it with --registry %s before deploying", digestRef, s.Targets.Knative.Registry)
	}

	final := func(name string) string { return filepath.Join(o.Out, name) }

	say("writing the OCI layout and the image tarball")
	if err := oci.WriteLayout(filepath.Join(tmp, "oci"), img.Image, o.Tag); err != nil {
		return nil, err
	}
	if err := oci.WriteTarball(filepath.Join(tmp, "image.tar"), img.Image, r.Image.Tag); err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Join(tmp, "image.tar")); err == nil {
		r.Image.TarballSize = st.Size()
	}
	r.Image.Layout, r.Image.Tarball = final("oci"), final("image.tar")

	// Lambda.
	say("writing the Lambda zip")
	lambdaSpec := *s
	if want := map[string]string{"amd64": spec.ArchX86, "arm64": spec.ArchARM64}[o.Arch]; want != s.Targets.Lambda.Arch {
		warn("targets.lambda.arch is %s but the binary is built for %s: the SAM template says %s", s.Targets.Lambda.Arch, o.Arch, want)
		lambdaSpec.Targets.Lambda.Arch = want
	}
	zipFiles := []lambdazip.File{{Name: "bootstrap", Src: bin.Path, Mode: 0o755}, {Name: ConfigName, Data: cfgJSON}}
	for _, group := range [][]shipped{runtimeFiles, model, wasmFiles} {
		for _, f := range group {
			zipFiles = append(zipFiles, lambdazip.File{Name: f.rel, Src: f.src, Data: f.data, Mode: f.mode})
		}
	}
	if onnx {
		libs, warnings := lambdaLibs(o.LambdaLibs, o.Arch)
		zipFiles = append(zipFiles, libs...)
		r.Warnings = append(r.Warnings, warnings...)
		if need, newer, err := lambdazip.NewerThanLambda(bin.Path); err == nil && newer {
			warn("the function binary needs GLIBC_%s, newer than Lambda %s's %s: it will not start there; build on a machine with glibc <= %s", need, lambdazip.Runtime, lambdazip.GLIBC, lambdazip.GLIBC)
		}
	}
	zinfo, err := lambdazip.Write(filepath.Join(tmp, "lambda.zip"), zipFiles, lambdazip.Options{Modified: created, CacheDir: zipCache(o)})
	var tooLarge *lambdazip.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		warn("no Lambda zip: %v", err)
	case err != nil:
		return nil, fmt.Errorf("writing the Lambda zip: %w", err)
	default:
		sam, err := lambdazip.Template(&lambdaSpec, "lambda.zip")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, "template.yaml"), sam, 0o644); err != nil {
			return nil, err
		}
		r.Lambda = &LambdaResult{Zip: final("lambda.zip"), Size: zinfo.Size, Unzipped: zinfo.Unzipped, SHA256: zinfo.SHA256, Template: final("template.yaml")}
	}

	// Knative.
	var modelSize int64
	for _, f := range model {
		if st, err := os.Stat(f.src); err == nil {
			modelSize += st.Size()
		}
	}
	svc, err := knative.Service(s, knative.Options{Image: digestRef, ModelSize: modelSize, ImageSize: imgSize})
	if err != nil {
		return nil, err
	}
	flags := knative.Needed(svc)
	if err := knative.Validate(ctx, svc, knative.Features{NodeSelector: true, Tolerations: true}); err != nil {
		return nil, fmt.Errorf("the Knative Service does not pass Knative's validation (a cortex bug): %w", err)
	}
	manifest, err := knative.YAML(svc)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "knative.yaml"), manifest, 0o644); err != nil {
		return nil, err
	}
	r.Knative = KnativeResult{Manifest: final("knative.yaml"), Features: flags}
	if len(flags) > 0 {
		warn("the Knative Service needs these config-features flags enabled in the cluster (knative-serving/config-features): %s", strings.Join(flags, ", "))
	}

	r.Duration = time.Since(start)
	if err := writeSummary(filepath.Join(tmp, summaryName), r); err != nil {
		return nil, err
	}
	if err := replaceDir(tmp, o.Out); err != nil {
		return nil, err
	}
	committed = true
	say("wrote %s", o.Out)

	if o.Registry != "" {
		dig, err := oci.Push(ctx, img.Image, r.Image.Tag, o.Progress, o.RemoteOptions...)
		if err != nil {
			return r, err
		}
		r.Pushed = dig.String()
		r.Duration = time.Since(start)
		if err := writeSummary(final(summaryName), r); err != nil {
			return r, err
		}
	}
	r.Duration = time.Since(start)
	return r, nil
}

// zipCache is where deflated zip entries are kept: none with NoCache.
func zipCache(o Options) string {
	if o.NoCache {
		return ""
	}
	return o.CacheDir
}

func writeSummary(p string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o644)
}

// checkOut refuses an output directory that holds something Package did
// not write: it is about to be replaced whole.
func checkOut(out string) error {
	st, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output directory %s: %w", out, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("output directory %s is a file", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("output directory %s: %w", out, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(out, summaryName)); err != nil {
		return fmt.Errorf("%w: %s is not empty and was not written by cortex package; remove it or choose another output directory", ErrOutNotDist, out)
	}
	return nil
}

// replaceDir puts the directory tmp at out: out's old content, if any,
// is moved aside first and removed after.
func replaceDir(tmp, out string) error {
	old := ""
	if _, err := os.Lstat(out); err == nil {
		old = tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			return fmt.Errorf("replacing %s: %w", out, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if old != "" {
			os.Rename(old, out)
		}
		return fmt.Errorf("replacing %s: %w", out, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// WriteSummary prints r for a person: the artifacts with their digests
// and sizes. The warnings are not part of it: they are diagnostics, which
// the CLI writes to stderr.
func (r *Result) WriteSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "packaged %s in %s -> %s\n", r.Function, r.Duration.Round(time.Millisecond), r.Out)
	fmt.Fprintf(&b, "  image     %s\n", r.Image.Ref)
	fmt.Fprintf(&b, "            %d layers, %s compressed (%s), base %s\n", len(r.Image.Layers), mb(r.Image.Size), r.Image.Compression, r.Image.Base.Ref)
	fmt.Fprintf(&b, "  layout    %s (tag %s)\n", r.Image.Layout, strings.TrimPrefix(r.Image.Tag[strings.LastIndex(r.Image.Tag, ":"):], ":"))
	fmt.Fprintf(&b, "  tarball   %s (%s, docker load)\n", r.Image.Tarball, mb(r.Image.TarballSize))
	if r.Lambda != nil {
		fmt.Fprintf(&b, "  lambda    %s (%s zipped, %s unzipped)\n", r.Lambda.Zip, mb(r.Lambda.Size), mb(r.Lambda.Unzipped))
		fmt.Fprintf(&b, "            %s\n", r.Lambda.Template)
	}
	fmt.Fprintf(&b, "  knative   %s\n", r.Knative.Manifest)
	if r.Pushed != "" {
		fmt.Fprintf(&b, "  pushed    %s\n", r.Pushed)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
