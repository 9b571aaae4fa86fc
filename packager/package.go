// Package packager turns a function directory into everything a deploy
// needs, with no Docker daemon, the way ko does: one thing is built, and
// each output is a sink that writes it.
//
//	Build(dir) -> *artifact.Artifact -> Write(artifact, outputs) -> dist/
//	  binary, stages, models,           oci      OCI image layout, tagged Options.Tag (skopeo, umoci, crane read it)
//	  libraries, cortex.json            tarball  the same image for `docker load` / `podman load`
//	                                    lambda   lambda.zip (bootstrap at the root, lib/, the model,
//	                                             cortex.json) and template.yaml (AWS SAM); or, with
//	                                             targets.lambda.package image or a zip over Lambda's
//	                                             limits, lambda-image/, the container image Lambda
//	                                             runs (packager/lambdaimage), and its template
//	                                    knative  knative.yaml, a serving.knative.dev/v1 Service
//	                                             naming the image by digest (also Result.Knative.Service)
//	                                    push     the image to Options.Registry
//	                                    sign     a cosign signature of the pushed image
//	                                             and of its SBOM (Options.Sign)
//
// Every image and zip written gets a software bill of materials
// (packager/sbom, CycloneDX JSON: the binary's Go modules, ONNX Runtime,
// the Debian packages of the libraries copied from the build machine,
// the models): dist/lambda.cdx.json beside the zip, dist/image.cdx.json
// beside the layout or tarball, and the same document attached to the
// image as an OCI referrer in dist/oci and, when pushed, in the registry.
// Signing (packager/sign) runs after the push, as the push does.
//
// Build (build.go) loads cortex.yaml (packager/spec), builds the binary
// and Go stages (packager/build, cached by content), and gathers every
// file the function ships. Write runs the outputs asked for (all by
// default) into a temporary directory and moves it into the output
// directory in one rename, with summary.json (the Result), so a failure
// never leaves a half-written dist/; the image is assembled once, and only
// when an output needs it (a Lambda-only write builds none). A push runs
// after the rename, so a failed push leaves a complete dist/. Package is
// Build then Write.
//
// It owns the order and the transaction of the outputs; the formats belong
// to packager/oci, packager/lambdazip, packager/knative, packager/sbom and
// packager/sign, and deploying to packager/deploy. Nothing here may be
// imported by a function binary.
//
// # Image layout
//
// Layers go from least to most often changed, so a code change re-uploads
// only the small layers at the end:
//
//	base       built-in: /etc/passwd, /etc/group (uid 65532), CA certificates,
//	           /tmp; for an ONNX (cgo) function also glibc, the loader,
//	           libstdc++ and libgcc_s copied from the build machine, or for
//	           another architecture from Debian's cross packages of it
//	           (libc6-arm64-cross, ...; their Debian package versions are
//	           recorded in the history and the SBOM)
//	runtime    /app/lib/libonnxruntime.so.1 (onnx functions only)
//	model-data /app/<the external data files ONNX models name> (models over
//	           2 GB keep their weights in .data files beside the graph)
//	model      /app/<predictor.model>, streamed from disk, compressed fast
//	wasm       /app/<pre>, /app/<post>
//	binary     /app/<name>
//	config     /app/cortex.json ($CORTEX_CONFIG)
//
// With Options.Arches naming several architectures, each gets its image
// and the image is an OCI image index of them, with platform fields
// (dist/oci tags the index; image.tar holds one tag per architecture,
// TAG-ARCH, since a docker tarball holds no index).
//
// Every layer is a deterministic tar (sorted, parents first, mtime from
// $SOURCE_DATE_EPOCH or 0, uid/gid 0, regular files and directories only),
// so the same inputs give the same digests, and the model layer's digest
// does not move when only code changes (nor is the model read again: the
// layer cache knows it by path, size and times; see packager/oci).
//
// Options.PushModel pushes the models on their own as well, under /models
// in KServe ModelCar's layout (oci.ModelImage), for predictor.model to
// name by reference (oci://REPO@sha256:...) instead of shipping them.
package packager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/onnxruntime"
	"github.com/cortexfn/cortex/packager/sign"
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

// Output names one output Write can produce.
type Output string

// The outputs, in the order Write runs them.
const (
	// OutputLayout is the OCI image layout, dist/oci.
	OutputLayout Output = "oci"
	// OutputTarball is the image as a docker-loadable tarball, dist/image.tar.
	OutputTarball Output = "tarball"
	// OutputLambda is the Lambda zip and its SAM template.
	OutputLambda Output = "lambda"
	// OutputKnative is the Knative Service, dist/knative.yaml.
	OutputKnative Output = "knative"
	// OutputPush pushes the image, and its SBOM referrer, to
	// Options.Registry.
	OutputPush Output = "push"
	// OutputSign signs the pushed image and its SBOM with Options.Sign,
	// pushing cosign signatures beside them.
	OutputSign Output = "sign"
)

// Outputs lists every output, in the order Write runs them.
var Outputs = []Output{OutputLayout, OutputTarball, OutputLambda, OutputKnative, OutputPush, OutputSign}

// ParseOutputs reads a comma-separated list of outputs ("oci,lambda").
func ParseOutputs(list string) ([]Output, error) {
	var outs []Output
	for _, f := range strings.Split(list, ",") {
		o := Output(strings.TrimSpace(f))
		if !slices.Contains(Outputs, o) {
			names := make([]string, len(Outputs))
			for i, o := range Outputs {
				names[i] = string(o)
			}
			return nil, fmt.Errorf("output %q: use %s", o, strings.Join(names, ", "))
		}
		if !slices.Contains(outs, o) {
			outs = append(outs, o)
		}
	}
	return outs, nil
}

// Options says how to package. The zero value packages for linux/amd64
// into DIR/dist with gzip layers on the built-in base, writes every output
// and pushes nothing.
type Options struct {
	BuildOptions
	// Arches, when it names more than one architecture, builds the
	// function for each and makes the image an OCI image index of one
	// image per architecture (pushed as one reference, named by the
	// Knative manifest); the Lambda zip ships one of them, the
	// architecture of targets.lambda.arch (the first named when that one
	// is not). One architecture is the same as BuildOptions.Arch; empty
	// means BuildOptions.Arch. See ParseArches.
	Arches []string
	// Out is the output directory. Default DIR/dist. It is replaced
	// whole; a directory that is not empty and was not written by Package
	// is refused.
	Out string
	// Outputs are the outputs to write. Default: every output, with the
	// push only when Registry is set and the signing only when Sign is.
	// OutputPush needs Registry; OutputSign needs Sign and OutputPush,
	// and Sign adds OutputSign to the outputs named.
	Outputs []Output
	// Base is the base image (see oci.Options.Base); empty means the
	// built-in minimal non-root base.
	Base string
	// Compression is oci.Gzip (default) or oci.Zstd.
	Compression oci.Compression
	// Registry is a repository prefix ("ghcr.io/acme"): the image becomes
	// REGISTRY/NAME:TAG, and the manifests name it there. Empty: the
	// manifests use targets.knative.registry or cortex.local.
	Registry string
	// Tag is the image tag. Default "latest".
	Tag string
	// LambdaLibs is a directory holding libstdc++.so.6 and libgcc_s.so.1
	// built for Lambda's glibc (2.34), shipped in the zip's lib/ for onnx
	// functions. Default: this machine's, when they need no newer glibc.
	LambdaLibs string
	// RemoteOptions are added to every registry call (pull of the base,
	// push, signing).
	RemoteOptions []remote.Option
	// Sign, when set, signs the pushed image and its SBOM with its key
	// (OutputSign): it needs Registry.
	Sign *sign.Signer
	// PushModel, when set, is a tag (ghcr.io/acme/iris-model:v1, with or
	// without oci://) to push the function's models to, as an image with
	// them under /models (KServe ModelCar's layout), after the outputs are
	// written; Result.Model gives the oci:// reference by digest that
	// predictor.model can name.
	PushModel string

	// started is when Package began, for Result.Duration.
	started time.Time
}

// Arches are the architectures a function can be packaged for.
var Arches = []string{"amd64", "arm64"}

// ParseArches reads a comma-separated list of architectures ("amd64",
// "amd64,arm64"), or "all" for every one of Arches.
func ParseArches(list string) ([]string, error) {
	if strings.TrimSpace(list) == "all" {
		return slices.Clone(Arches), nil
	}
	var out []string
	for _, f := range strings.Split(list, ",") {
		a := strings.TrimSpace(f)
		if !slices.Contains(Arches, a) {
			return nil, fmt.Errorf("architecture %q: use %s, a comma-separated list of them, or all", a, strings.Join(Arches, " or "))
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Result is what Package made. It marshals to the JSON `cortex package
// --output json` prints; an output that was not asked for is absent.
type Result struct {
	Function string       `json:"function"`
	Dir      string       `json:"dir"`
	Out      string       `json:"out"`
	Binary   BinaryResult `json:"binary"`
	// Image is set when an output needed the image.
	Image   *ImageResult   `json:"image,omitempty"`
	Lambda  *LambdaResult  `json:"lambda,omitempty"`
	Knative *KnativeResult `json:"knative,omitempty"`
	// Pushed is the pushed image's digest reference, when pushed.
	Pushed string `json:"pushed,omitempty"`
	// Model is the model image pushed with Options.PushModel.
	Model *ModelResult `json:"model,omitempty"`
	// Signatures are the tags of the signatures pushed (the image's, then
	// its SBOM's: REPO:sha256-HEX.sig), when signed.
	Signatures []string `json:"signatures,omitempty"`
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

// ImageResult describes the image: one image, or (Index) an OCI image
// index of one image per architecture, each described in Platforms.
type ImageResult struct {
	// Ref is the digest reference the manifests use (repo@sha256:...):
	// the image's, or the index's.
	Ref    string `json:"ref"`
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest"`
	// Index is true for an image index; its Base, Layers and SBOM are
	// then its Platforms'.
	Index bool `json:"index,omitempty"`
	// Arch is the architecture of one image of an index.
	Arch string `json:"arch,omitempty"`
	// Platforms are the images of an index, one per architecture.
	Platforms   []*ImageResult  `json:"platforms,omitempty"`
	Compression oci.Compression `json:"compression,omitempty"`
	// Size is the sum of the compressed layers.
	Size        int64           `json:"size"`
	Layout      string          `json:"layout,omitempty"`
	Tarball     string          `json:"tarball,omitempty"`
	TarballSize int64           `json:"tarball_size,omitempty"`
	Base        oci.BaseInfo    `json:"base"`
	Layers      []oci.LayerInfo `json:"layers"`
	// SBOM is the image's SBOM, when the image was written or pushed.
	SBOM *SBOMResult `json:"sbom,omitempty"`
}

// SBOMResult describes the image's SBOM.
type SBOMResult struct {
	// File is dist/image.cdx.json, when a layout or tarball was written.
	File string `json:"file,omitempty"`
	// Referrer is the digest of the OCI artifact manifest that attaches
	// it to the image, in the layout and the registry.
	Referrer string `json:"referrer"`
	// Pushed is the referrer's digest reference, when pushed.
	Pushed string `json:"pushed,omitempty"`
	// Hashed lists the files read to hash them for the SBOM: the binary,
	// and any file the layer cache did not know (an unchanged model is
	// named by the digest its layer recorded, and not read).
	Hashed []string `json:"hashed,omitempty"`
}

// LambdaResult describes the Lambda zip, or the Lambda container image
// (Package image: Image is set, the zip's fields are empty).
type LambdaResult struct {
	// Package is spec.LambdaPackageZip or spec.LambdaPackageImage.
	Package string `json:"package"`
	// Reason says why the image replaced the zip cortex.yaml did not ask
	// for (the zip would pass Lambda's limits).
	Reason   string             `json:"reason,omitempty"`
	Image    *LambdaImageResult `json:"image,omitempty"`
	Zip      string             `json:"zip,omitempty"`
	Size     int64              `json:"size,omitempty"`
	Unzipped int64              `json:"unzipped,omitempty"`
	SHA256   string             `json:"sha256,omitempty"`
	Template string             `json:"template"`
	// SBOM is the zip's SBOM, dist/lambda.cdx.json, or the image's,
	// dist/lambda-image.cdx.json.
	SBOM string `json:"sbom"`
}

// KnativeResult describes the Knative manifest.
type KnativeResult struct {
	Manifest string `json:"manifest"`
	// Features lists the config-features flags the cluster must enable.
	Features []string `json:"features,omitempty"`
	// Service is the manifest as an object, for a deployer.
	Service *servingv1.Service `json:"-"`
	// Trigger is the Eventing Trigger of targets.knative.trigger, nil
	// without one.
	Trigger *knative.Trigger `json:"-"`
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

// Package packages the function in dir: Build, then Write. See the
// package documentation.
func Package(ctx context.Context, dir string, o Options) (*Result, error) {
	o.started = time.Now()
	s, err := spec.Load(dir)
	if err != nil {
		return nil, err
	}
	return PackageSpec(ctx, s, o)
}

// PackageSpec is Package for a spec already loaded: BuildSpec, then Write.
func PackageSpec(ctx context.Context, s *spec.Spec, o Options) (*Result, error) {
	if o.started.IsZero() {
		o.started = time.Now()
	}
	// Once the package is written (or has failed), the layers and zip
	// entries unused for days go, as the go command trims its cache on
	// exit: everything this package used has been marked used by then.
	if root, err := build.CacheRoot(o.CacheDir); err == nil {
		defer oci.TrimCache(root)
		defer lambdazip.TrimCache(root)
	}
	// The outputs are checked before anything is built.
	outs, err := o.outputs()
	if err != nil {
		return nil, err
	}
	if err := checkPushModel(o.PushModel); err != nil {
		return nil, err
	}
	arches := o.Arches
	if len(arches) == 0 {
		arches = []string{o.Arch}
	}
	// Only the image has several platforms: a Lambda-only package builds
	// the Lambda's architecture alone.
	if len(arches) > 1 && !slices.ContainsFunc(outs, func(out Output) bool { return out != OutputLambda }) {
		arches = []string{lambdaArch(s, arches)}
	}
	var as []*artifact.Artifact
	defer func() {
		for _, a := range as {
			a.Close()
		}
	}()
	for _, arch := range arches {
		bo := o.BuildOptions
		bo.Arch = arch
		a, err := BuildSpec(ctx, s, bo)
		if err != nil {
			return nil, err
		}
		as = append(as, a)
	}
	return WritePlatforms(ctx, as, o)
}

// lambdaArch is the architecture the Lambda zip ships among arches:
// targets.lambda.arch's, else the first.
func lambdaArch(s *spec.Spec, arches []string) string {
	want := map[string]string{spec.ArchX86: "amd64", spec.ArchARM64: "arm64"}[s.Targets.Lambda.Arch]
	if slices.Contains(arches, want) {
		return want
	}
	return arches[0]
}

// outputs returns the outputs o asks for, in the order they run.
func (o *Options) outputs() ([]Output, error) {
	asked := o.Outputs
	if asked == nil {
		asked = slices.DeleteFunc(slices.Clone(Outputs), func(out Output) bool {
			return (out == OutputPush && o.Registry == "") || (out == OutputSign && o.Sign == nil)
		})
	}
	for _, out := range asked {
		if !slices.Contains(Outputs, out) {
			return nil, fmt.Errorf("output %q: use one of %v", out, Outputs)
		}
	}
	if o.Sign != nil && !slices.Contains(asked, OutputSign) {
		asked = append(slices.Clone(asked), OutputSign)
	}
	switch {
	case slices.Contains(asked, OutputSign) && o.Registry == "":
		return nil, errors.New("signing (--sign) signs the pushed image and needs a registry: pass --registry REPO (e.g. ghcr.io/acme)")
	case slices.Contains(asked, OutputPush) && o.Registry == "":
		return nil, errors.New("pushing the image needs a registry: pass --registry REPO (e.g. ghcr.io/acme)")
	case slices.Contains(asked, OutputSign) && o.Sign == nil:
		return nil, errors.New("the sign output needs a key: pass --sign KEY")
	case slices.Contains(asked, OutputSign) && !slices.Contains(asked, OutputPush):
		return nil, errors.New("signing (--sign) signs the pushed image: add push to --outputs")
	}
	return slices.DeleteFunc(slices.Clone(Outputs), func(out Output) bool { return !slices.Contains(asked, out) }), nil
}

// Write writes the outputs o asks for of the artifact a into o.Out (default
// the function's dist/), replacing it whole: everything but the push is
// written into a temporary directory first and renamed into place, so
// nothing is left in Out unless all of it was written. When only the push
// fails, Out is complete and the Result comes back with the error.
func Write(ctx context.Context, a *artifact.Artifact, o Options) (*Result, error) {
	return WritePlatforms(ctx, []*artifact.Artifact{a}, o)
}

// WritePlatforms is Write for the artifacts of one function built for
// several architectures (in the order given): the image becomes an OCI
// image index of one image per artifact, and the Lambda zip ships the
// artifact of targets.lambda.arch (the first when none is).
func WritePlatforms(ctx context.Context, as []*artifact.Artifact, o Options) (*Result, error) {
	if len(as) == 0 {
		return nil, errors.New("packager: no artifact to write")
	}
	var arches []string
	for _, a := range as {
		if slices.Contains(arches, a.Arch) {
			return nil, fmt.Errorf("packager: two artifacts for %s", a.Arch)
		}
		arches = append(arches, a.Arch)
	}
	a := as[slices.Index(arches, lambdaArch(as[0].Spec, arches))]
	start := o.started
	if start.IsZero() {
		start = time.Now()
	}
	outs, err := o.outputs()
	if err != nil {
		return nil, err
	}
	if err := checkPushModel(o.PushModel); err != nil {
		return nil, err
	}
	s := a.Spec
	if o.Out == "" {
		o.Out = filepath.Join(s.Dir, "dist")
	}
	// The cache Build used, for the compressed layers and zip entries.
	if o.CacheDir, err = build.CacheRoot(o.CacheDir); err != nil {
		return nil, err
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
	w := &writer{as: as, a: a, o: o, dir: tmp, r: &Result{Function: s.Name, Dir: s.Dir, Out: o.Out}}
	defer w.close()
	size, err := a.Binary.Size()
	if err != nil {
		return nil, err
	}
	w.r.Binary = BinaryResult{Arch: a.Arch, Size: size, Cached: a.BinaryCached}
	var after []sink
	for _, out := range outs {
		sk := sinks[out]
		if sk.afterCommit {
			after = append(after, sk)
			continue
		}
		if err := sk.write(ctx, w); err != nil {
			return nil, err
		}
	}
	w.r.Duration = time.Since(start)
	if err := writeSummary(filepath.Join(tmp, summaryName), w.r); err != nil {
		return nil, err
	}
	if err := replaceDir(tmp, o.Out); err != nil {
		return nil, err
	}
	committed = true
	w.dir = o.Out
	o.say("wrote %s", o.Out)
	if o.PushModel != "" {
		after = append(after, sink{write: pushModel, afterCommit: true})
	}
	var failed error
	for _, sk := range after {
		if failed = sk.write(ctx, w); failed != nil {
			break
		}
	}
	// The summary records what the push did, even when a later step
	// (signing) failed.
	w.r.Duration = time.Since(start)
	if len(after) > 0 {
		if err := writeSummary(filepath.Join(o.Out, summaryName), w.r); err != nil && failed == nil {
			failed = err
		}
	}
	return w.r, failed
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
	if im := r.Image; im != nil {
		fmt.Fprintf(&b, "  image     %s\n", im.Ref)
		if im.Index {
			fmt.Fprintf(&b, "            an image index of %d platforms, %s compressed (%s)\n", len(im.Platforms), mb(im.Size), im.Compression)
			for _, p := range im.Platforms {
				fmt.Fprintf(&b, "  %-9s %s\n", p.Arch, p.Ref)
				fmt.Fprintf(&b, "            %d layers, %s compressed, base %s\n", len(p.Layers), mb(p.Size), p.Base.Ref)
			}
		} else {
			fmt.Fprintf(&b, "            %d layers, %s compressed (%s), base %s\n", len(im.Layers), mb(im.Size), im.Compression, im.Base.Ref)
		}
		if im.Layout != "" {
			fmt.Fprintf(&b, "  layout    %s (tag %s)\n", im.Layout, strings.TrimPrefix(im.Tag[strings.LastIndex(im.Tag, ":"):], ":"))
		}
		if im.Tarball != "" {
			fmt.Fprintf(&b, "  tarball   %s (%s, docker load)\n", im.Tarball, mb(im.TarballSize))
		}
	}
	if l := r.Lambda; l != nil && l.Image != nil {
		fmt.Fprintf(&b, "  lambda    %s (container image %s, %s, %s compressed)\n", l.Image.Layout, l.Image.Digest[:19], l.Image.Arch, mb(l.Image.Size))
		if l.Reason != "" {
			fmt.Fprintf(&b, "            an image because %s\n", l.Reason)
		}
		if l.Image.Pushed != "" {
			fmt.Fprintf(&b, "            pushed %s\n", l.Image.Pushed)
		}
		fmt.Fprintf(&b, "            %s\n", l.Template)
		fmt.Fprintf(&b, "            %s (SBOM)\n", l.SBOM)
	} else if r.Lambda != nil {
		fmt.Fprintf(&b, "  lambda    %s (%s zipped, %s unzipped)\n", r.Lambda.Zip, mb(r.Lambda.Size), mb(r.Lambda.Unzipped))
		fmt.Fprintf(&b, "            %s\n", r.Lambda.Template)
		fmt.Fprintf(&b, "            %s (SBOM)\n", r.Lambda.SBOM)
	}
	if r.Knative != nil {
		fmt.Fprintf(&b, "  knative   %s\n", r.Knative.Manifest)
	}
	if r.Pushed != "" {
		fmt.Fprintf(&b, "  pushed    %s\n", r.Pushed)
	}
	if im := r.Image; im != nil {
		for _, p := range append([]*ImageResult{im}, im.Platforms...) {
			if p.SBOM == nil {
				continue
			}
			for _, where := range []string{p.SBOM.File, p.SBOM.Pushed} {
				if where != "" {
					fmt.Fprintf(&b, "  sbom      %s (image%s)\n", where, map[bool]string{true: ", " + p.Arch}[p.Arch != ""])
				}
			}
		}
	}
	for _, sig := range r.Signatures {
		fmt.Fprintf(&b, "  signed    %s\n", sig)
	}
	if m := r.Model; m != nil {
		fmt.Fprintf(&b, "  model     %s\n", m.Ref)
		files := "files"
		if len(m.Files) == 1 {
			files = "file"
		}
		fmt.Fprintf(&b, "            %d %s under /models, tagged %s; to fetch it at start instead of shipping it, set in cortex.yaml\n", len(m.Files), files, m.Tag)
		fmt.Fprintf(&b, "              predictor.model: %s\n", m.Ref)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
