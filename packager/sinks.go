package packager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/dpkg"
	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/sbom"
	"github.com/cortexfn/cortex/packager/spec"
)

// A sink writes one output of an artifact. Sinks share a writer, which
// assembles the image once, for the first sink that needs it.
type sink struct {
	write func(ctx context.Context, w *writer) error
	// afterCommit sinks run once the output directory is in place (the
	// push: a failed push must not cost the user the written outputs).
	afterCommit bool
}

// sinks maps every Output to its sink.
var sinks = map[Output]sink{
	OutputLayout:  {write: writeLayout},
	OutputTarball: {write: writeTarball},
	OutputLambda:  {write: writeLambda},
	OutputKnative: {write: writeKnative},
	OutputPush:    {write: push, afterCommit: true},
	OutputSign:    {write: signPushed, afterCommit: true},
}

// writer is one Write: the artifacts (one per platform of the image),
// the options, the directory the outputs go to, the Result they fill in,
// and the images once built.
type writer struct {
	// as are the artifacts, one per architecture of the image; a is the
	// one the Lambda zip ships (targets.lambda.arch's when it was built).
	as  []*artifact.Artifact
	a   *artifact.Artifact
	o   Options
	dir string
	r   *Result
	// platforms are the images, one per artifact, once assembled; index
	// is their OCI image index when there is more than one.
	platforms []*platform
	index     v1.ImageIndex
	// fns are the artifacts as their SBOMs describe them, each read once.
	fns map[*artifact.Artifact]*sbom.Function
}

// platform is one architecture's image and its SBOM.
type platform struct {
	a   *artifact.Artifact
	img *oci.Image
	res *ImageResult
	// sbom is the image's SBOM, and referrer the same attached to the
	// image.
	sbom     []byte
	referrer v1.Image
}

// multi reports whether the image is an index of several platforms.
func (w *writer) multi() bool { return len(w.as) > 1 }

func (w *writer) warn(format string, args ...any) {
	w.r.Warnings = append(w.r.Warnings, fmt.Sprintf(format, args...))
}

func (w *writer) close() {
	for _, p := range w.platforms {
		p.img.Close()
	}
}

// final is where the output name ends up once the directory is in place.
func (w *writer) final(name string) string { return filepath.Join(w.o.Out, name) }

// repository is the image's repository: REGISTRY/NAME, with
// targets.knative.registry, then cortex.local, when no registry is given.
func (w *writer) repository() string {
	repo := w.o.Registry
	if repo == "" {
		repo = w.a.Spec.Targets.Knative.Registry
	}
	if repo == "" {
		repo = DefaultRepository
	}
	return strings.TrimSuffix(repo, "/") + "/" + w.a.Spec.Name
}

// image assembles the image, one per platform and their index when there
// are several, the first time a sink asks for it.
func (w *writer) image(ctx context.Context) error {
	if w.platforms != nil {
		return nil
	}
	o, s := w.o, w.a.Spec
	var imgs []v1.Image
	for _, a := range w.as {
		p, err := w.platformImage(ctx, a)
		if err != nil {
			for _, p := range w.platforms {
				p.img.Close()
			}
			w.platforms = nil
			return err
		}
		w.platforms = append(w.platforms, p)
		imgs = append(imgs, p.img.Image)
	}
	repo := w.repository()
	if !w.multi() {
		w.r.Image = w.platforms[0].res
	} else {
		idx, err := oci.Index(imgs...)
		if err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		w.index = idx
		im := &ImageResult{Ref: repo + "@" + d.String(), Tag: repo + ":" + o.Tag, Digest: d.String(), Compression: o.Compression, Index: true}
		for _, p := range w.platforms {
			im.Size += p.res.Size
			im.Platforms = append(im.Platforms, p.res)
		}
		w.r.Image = im
		o.say("image index %s: %s", d.String()[:19], strings.Join(w.arches(), ", "))
	}
	digestRef := w.r.Image.Ref
	if s.Compute.GPU > 0 && !w.platforms[0].img.Base.CUDA {
		w.warn("compute.gpu is %d: the Knative manifest places the function on GPU nodes, but the image has no CUDA libraries, so the model will run on the CPU there. "+
			"To use the GPU, give a CUDA base image (--base with an nvidia/cuda cudnn runtime image for linux/%s) and put ONNX Runtime's CUDA provider "+
			"(libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so, from an ONNX Runtime GPU release) beside libonnxruntime.so.1", s.Compute.GPU, w.platforms[0].a.Arch)
	}
	if o.Compression == oci.Zstd {
		w.warn("the image has zstd layers: Lambda container images need gzip, and containerd < 1.5 or Docker < 23 cannot run it; package without --compression zstd for those")
	}
	switch {
	case repo == DefaultRepository+"/"+s.Name:
		w.warn("no registry given: the manifests name %s; push with --registry REPO (or set targets.knative.registry) before deploying", digestRef)
	case o.Registry == "":
		w.warn("not pushed: the Knative manifest names %s (targets.knative.registry); push it with --registry %s before deploying", digestRef, s.Targets.Knative.Registry)
	}
	return nil
}

// arches lists the architectures of the image, in order.
func (w *writer) arches() []string {
	var out []string
	for _, a := range w.as {
		out = append(out, a.Arch)
	}
	return out
}

// platformImage assembles the image of one artifact.
func (w *writer) platformImage(ctx context.Context, a *artifact.Artifact) (*platform, error) {
	o, s := w.o, a.Spec
	app := strings.TrimPrefix(AppDir, "/")
	labels := map[string]string{
		"org.opencontainers.image.title":       s.Name,
		"org.opencontainers.image.description": "Cortex function " + s.Name + " (" + s.Predictor.Type + " predictor)",
		"org.opencontainers.image.created":     a.Created.Format(time.RFC3339),
		"dev.cortexfn.function":                s.Name,
		"dev.cortexfn.predictor":               s.Predictor.Type,
		"dev.cortexfn.spec.sha256":             a.SpecSHA256,
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
	o.say("assembling the image (%s, %s layers)", a.Arch, o.Compression)
	models, modelData := splitModels(a.Models)
	img, err := oci.Build(ctx, oci.Contents{
		Layers: []oci.Layer{
			{Name: "runtime", Level: oci.Default, Files: artifact.Under(app, a.Runtime)},
			// ONNX external data (models over 2 GB) apart from the graph.
			{Name: "model-data", Level: oci.Fast, Files: artifact.Under(app, modelData)},
			{Name: "model", Level: oci.Fast, Files: artifact.Under(app, models)},
			{Name: "wasm", Level: oci.Default, Files: artifact.Under(app, a.Stages)},
			{Name: "binary", Level: oci.Default, Files: artifact.Under(app, []artifact.File{a.Binary})},
			{Name: "config", Level: oci.Default, Files: artifact.Under(app, []artifact.File{a.Config})},
		},
		Entrypoint: []string{path.Join(AppDir, s.Name)},
		Env:        []string{"PORT=" + fmt.Sprint(knative.Port), "CORTEX_CONFIG=" + path.Join(AppDir, ConfigName)},
		WorkingDir: AppDir,
		Labels:     labels,
		CGO:        a.Cgo,
	}, oci.Options{
		Base: o.Base, Arch: a.Arch, Compression: o.Compression, Created: a.Created,
		CacheDir: o.CacheDir, NoCache: o.NoCache, Progress: o.Progress, RemoteOptions: o.RemoteOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("assembling the %s image: %w", a.Arch, err)
	}
	w.r.Warnings = append(w.r.Warnings, img.Notes...)
	var size int64
	for _, l := range img.Layers {
		size += l.Size
	}
	repo := w.repository()
	res := &ImageResult{
		Ref: repo + "@" + img.Digest.String(), Tag: repo + ":" + o.Tag, Digest: img.Digest.String(), Compression: o.Compression,
		Size: size, Base: img.Base, Layers: img.Layers,
	}
	if w.multi() {
		res.Arch, res.Tag = a.Arch, ""
	}
	return &platform{a: a, img: img, res: res}, nil
}

// writeLayout writes the image as an OCI image layout, dist/oci: the
// image, or the index of every platform's image, tagged, and each image's
// SBOM referrer beside it.
func writeLayout(ctx context.Context, w *writer) error {
	if err := w.image(ctx); err != nil {
		return err
	}
	w.o.say("writing the OCI layout")
	dir := filepath.Join(w.dir, "oci")
	var err error
	if w.multi() {
		err = oci.WriteIndexLayout(dir, w.index, w.o.Tag)
	} else {
		err = oci.WriteLayout(dir, w.platforms[0].img.Image, w.o.Tag)
	}
	if err != nil {
		return err
	}
	for _, p := range w.platforms {
		if err := w.writeImageSBOM(p); err != nil {
			return err
		}
		if err := sbom.AppendLayout(dir, p.referrer); err != nil {
			return err
		}
	}
	w.r.Image.Layout = w.final("oci")
	return nil
}

// writeTarball writes the image as a docker-loadable tarball,
// dist/image.tar: a docker tarball holds no index, so several platforms
// go there as one tag each (TAG-ARCH).
func writeTarball(ctx context.Context, w *writer) error {
	if err := w.image(ctx); err != nil {
		return err
	}
	w.o.say("writing the image tarball")
	p := filepath.Join(w.dir, "image.tar")
	var err error
	if w.multi() {
		imgs := map[string]v1.Image{}
		for _, pl := range w.platforms {
			pl.res.Tag = w.r.Image.Tag + "-" + pl.a.Arch
			imgs[pl.res.Tag] = pl.img.Image
		}
		err = oci.WriteTarballs(p, imgs)
	} else {
		err = oci.WriteTarball(p, w.platforms[0].img.Image, w.r.Image.Tag)
	}
	if err != nil {
		return err
	}
	if st, err := os.Stat(p); err == nil {
		w.r.Image.TarballSize = st.Size()
	}
	w.r.Image.Tarball = w.final("image.tar")
	for _, pl := range w.platforms {
		if err := w.writeImageSBOM(pl); err != nil {
			return err
		}
	}
	return nil
}

// lambdaSpec is the spec a Lambda output describes: targets.lambda.arch
// is the architecture the binary was built for, with a warning when the
// spec said otherwise.
func (w *writer) lambdaSpec(a *artifact.Artifact) *spec.Spec {
	s := *a.Spec
	if want := map[string]string{"amd64": spec.ArchX86, "arm64": spec.ArchARM64}[a.Arch]; want != a.Spec.Targets.Lambda.Arch {
		w.warn("targets.lambda.arch is %s but the binary is built for %s: the SAM template says %s", a.Spec.Targets.Lambda.Arch, a.Arch, want)
		s.Targets.Lambda.Arch = want
	}
	return &s
}

// writeLambda writes lambda.zip and its SAM template. A function too large
// for a zip gets a warning, not an error: the other outputs still serve.
func writeLambda(ctx context.Context, w *writer) error {
	a, o := w.a, w.o
	if lambdaImageWanted(a.Spec) {
		return writeLambdaImage(ctx, w, "")
	}
	warned := len(w.r.Warnings) // the zip's own, dropped if the image replaces it
	w.o.say("writing the Lambda zip")
	lambdaSpec := w.lambdaSpec(a)
	bootstrap := a.Binary
	bootstrap.Path = "bootstrap"
	files := []artifact.File{bootstrap, a.Config}
	files = append(files, a.Runtime...)
	files = append(files, a.Models...)
	files = append(files, a.Stages...)
	var libs []artifact.File
	if a.ONNXRuntime() {
		var warnings []string
		libs, warnings = lambdaLibs(o.LambdaLibs, a.Arch)
		files = append(files, libs...)
		w.r.Warnings = append(w.r.Warnings, warnings...)
		// Every library bootstrap and ONNX Runtime need, and each symbol
		// version, must be in the zip or in provided.al2023 per its
		// published package list (what Lambda loads is decided there,
		// not by what ships). A failure is a warning, like the zip's
		// other limits: the image and the Knative manifest still serve,
		// and the list is a lower bound of what Lambda has, not Lambda.
		sys, err := lambdazip.Provided(a.Arch)
		if err == nil {
			err = lambdazip.CheckLibraries(files, sys)
		}
		if err != nil {
			w.warn("%v", err)
		}
	}
	cache := o.CacheDir // deflated zip entries; none with NoCache
	if o.NoCache {
		cache = ""
	}
	info, err := lambdazip.Write(filepath.Join(w.dir, "lambda.zip"), files, lambdazip.Options{Modified: a.Created, CacheDir: cache})
	var tooLarge *lambdazip.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		if why := lambdaImageChosen(a.Spec, tooLarge); why != "" {
			w.r.Warnings = w.r.Warnings[:warned]
			return writeLambdaImage(ctx, w, why)
		}
		w.warn("no Lambda zip: %v (targets.lambda.package is zip: set it to image, or remove it)", err)
		return nil
	case err != nil:
		return fmt.Errorf("writing the Lambda zip: %w", err)
	}
	sam, err := lambdazip.Template(lambdaSpec, "lambda.zip")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(w.dir, "template.yaml"), sam, 0o644); err != nil {
		return err
	}
	fn, err := w.function(a)
	if err != nil {
		return err
	}
	doc, err := fn.JSON(sbom.Output{Kind: sbom.Zip, Name: "lambda.zip", Digest: "sha256:" + info.SHA256, Binary: bootstrap.Path, Copied: libs})
	if err != nil {
		return fmt.Errorf("the Lambda zip's SBOM: %w", err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "lambda.cdx.json"), doc, 0o644); err != nil {
		return err
	}
	w.r.Lambda = &LambdaResult{Package: spec.LambdaPackageZip, Zip: w.final("lambda.zip"), Size: info.Size, Unzipped: info.Unzipped, SHA256: info.SHA256, Template: w.final("template.yaml"), SBOM: w.final("lambda.cdx.json")}
	return nil
}

// writeKnative makes the Knative Service for the image, checks it with
// Knative's own validation, and writes it as dist/knative.yaml.
func writeKnative(ctx context.Context, w *writer) error {
	if err := w.image(ctx); err != nil {
		return err
	}
	svc, err := knative.Service(w.a.Spec, knative.Options{Image: w.r.Image.Ref, ModelSize: w.a.ModelSize(), ImageSize: w.r.Image.Size})
	if err != nil {
		return err
	}
	flags := knative.Needed(svc)
	if err := knative.Validate(ctx, svc, knative.Features{NodeSelector: true, Tolerations: true}); err != nil {
		return fmt.Errorf("the Knative Service does not pass Knative's validation (a cortex bug): %w", err)
	}
	manifest, err := knative.YAML(svc)
	if err != nil {
		return err
	}
	// targets.knative.trigger: the Eventing Trigger that delivers a
	// broker's events to the Service, as a second document.
	trigger, err := knative.TriggerFor(w.a.Spec, svc)
	if err != nil {
		return err
	}
	if trigger != nil {
		doc, err := knative.TriggerYAML(trigger)
		if err != nil {
			return err
		}
		manifest = append(append(manifest, "---\n"...), doc...)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "knative.yaml"), manifest, 0o644); err != nil {
		return err
	}
	w.r.Knative = &KnativeResult{Manifest: w.final("knative.yaml"), Features: flags, Service: svc, Trigger: trigger}
	if len(flags) > 0 {
		w.warn("the Knative Service needs these config-features flags enabled in the cluster (knative-serving/config-features): %s", strings.Join(flags, ", "))
	}
	return nil
}

// push pushes the image (or the index of every platform's image) to
// REGISTRY/NAME:TAG, then each image's SBOM referrer, then the Lambda
// image when one was written.
func push(ctx context.Context, w *writer) error {
	if err := w.image(ctx); err != nil {
		return err
	}
	var dig name.Digest
	var err error
	if w.multi() {
		dig, err = oci.PushIndex(ctx, w.index, w.r.Image.Tag, w.o.Progress, w.o.RemoteOptions...)
	} else {
		dig, err = oci.Push(ctx, w.platforms[0].img.Image, w.r.Image.Tag, w.o.Progress, w.o.RemoteOptions...)
	}
	if err != nil {
		return err
	}
	w.r.Pushed = dig.String()
	for _, p := range w.platforms {
		if err := w.makeImageSBOM(p); err != nil {
			return err
		}
		sd, err := sbom.Push(ctx, p.referrer, dig.Context().String(), w.o.RemoteOptions...)
		if err != nil {
			return err
		}
		p.res.SBOM.Pushed = sd.String()
	}
	return pushLambdaImage(ctx, w)
}

// signPushed signs the pushed image (or index) and each image's SBOM
// referrer (cosign's format, packager/sign).
func signPushed(ctx context.Context, w *writer) error {
	refs := []string{w.r.Pushed}
	for _, p := range w.platforms {
		refs = append(refs, p.res.SBOM.Pushed)
	}
	for _, ref := range refs {
		w.o.say("signing %s", ref)
		tag, err := w.o.Sign.Sign(ctx, ref, w.o.RemoteOptions...)
		if err != nil {
			return err
		}
		w.r.Signatures = append(w.r.Signatures, tag.String())
	}
	return nil
}

// function reads the artifact a for its SBOMs, once.
func (w *writer) function(a *artifact.Artifact) (*sbom.Function, error) {
	if fn, ok := w.fns[a]; ok {
		return fn, nil
	}
	// The model layers recorded their files' SHA-256 as they read them
	// (or an earlier package did, for an unchanged model): the SBOM takes
	// them from the layer cache rather than reading the model again.
	var known sbom.Known
	if !w.o.NoCache {
		known = func(f artifact.File) (string, bool) { return oci.FileDigest(w.o.CacheDir, f) }
	}
	fn, err := sbom.ReadKnown(a, known)
	if err != nil {
		return nil, fmt.Errorf("reading the function for its SBOM: %w", err)
	}
	if w.fns == nil {
		w.fns = map[*artifact.Artifact]*sbom.Function{}
	}
	w.fns[a] = fn
	return fn, nil
}

// imageSBOMOutput describes an image made from p's (the function image,
// or the Lambda image on its layers) for its SBOM: the base's files and
// Debian packages, under name and digest.
func (w *writer) imageSBOMOutput(p *platform, name, digest string) (sbom.Output, error) {
	base := p.img.Base
	out := sbom.Output{Kind: sbom.Image, Name: name, Digest: digest, Root: AppDir, Files: base.Files}
	if w.o.Base != "" {
		out.Base = base.Ref
	}
	for _, s := range base.Packages {
		pkg, err := dpkg.Parse(s)
		if err != nil {
			return sbom.Output{}, err
		}
		out.Packages = append(out.Packages, pkg)
	}
	return out, nil
}

// makeImageSBOM makes the SBOM of the platform's image and its referrer,
// once the image is assembled.
func (w *writer) makeImageSBOM(p *platform) error {
	if p.referrer != nil {
		return nil
	}
	fn, err := w.function(p.a)
	if err != nil {
		return err
	}
	out, err := w.imageSBOMOutput(p, w.repository(), p.img.Digest.String())
	if err != nil {
		return err
	}
	doc, err := fn.JSON(out)
	if err != nil {
		return fmt.Errorf("the image's SBOM: %w", err)
	}
	ref, err := sbom.Referrer(doc, p.img.Image, p.a.Created)
	if err != nil {
		return err
	}
	d, err := ref.Digest()
	if err != nil {
		return err
	}
	p.sbom, p.referrer = doc, ref
	p.res.SBOM = &SBOMResult{Referrer: d.String(), Hashed: fn.Hashed()}
	return nil
}

// writeImageSBOM writes the SBOM of the platform's image beside the image
// in the output directory, once: image.cdx.json, or image-ARCH.cdx.json
// for each image of an index.
func (w *writer) writeImageSBOM(p *platform) error {
	if err := w.makeImageSBOM(p); err != nil {
		return err
	}
	if p.res.SBOM.File != "" {
		return nil
	}
	file := "image.cdx.json"
	if w.multi() {
		file = "image-" + p.a.Arch + ".cdx.json"
	}
	if err := os.WriteFile(filepath.Join(w.dir, file), p.sbom, 0o644); err != nil {
		return err
	}
	p.res.SBOM.File = w.final(file)
	return nil
}
