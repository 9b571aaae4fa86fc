package packager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/lambdaimage"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/spec"
)

// LambdaImageDir is where the Lambda container image is written in the
// output directory, as an OCI image layout.
const LambdaImageDir = "lambda-image"

// LambdaImageResult describes the Lambda container image
// (targets.lambda.package image).
type LambdaImageResult struct {
	// Layout is the OCI image layout holding it, dist/lambda-image, tagged
	// Tag: one image manifest, never an index (Lambda takes none).
	Layout string `json:"layout"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	// Arch is the image's GOARCH, targets.lambda.arch's.
	Arch string `json:"arch"`
	// Size is the sum of the compressed layers; Uncompressed is the
	// function's files plus the base's compressed layers, what Lambda's
	// 10 GB limit is checked against.
	Size         int64 `json:"size"`
	Uncompressed int64 `json:"uncompressed"`
	// Ref is REGISTRY/NAME@DIGEST, where the SAM template and cortex
	// deploy expect it, when a registry is known (--registry, or
	// targets.lambda.registry).
	Ref string `json:"ref,omitempty"`
	// Pushed is Ref once cortex package --registry pushed it, to
	// REGISTRY/NAME:lambda (lambdaimage.Tag).
	Pushed string `json:"pushed,omitempty"`
}

// lambdaImageWanted says whether cortex.yaml asks for the Lambda
// container image.
func lambdaImageWanted(s *spec.Spec) bool {
	return s.Targets.Lambda.Package == spec.LambdaPackageImage
}

// lambdaImageChosen is why an image replaces a zip cortex.yaml did not
// ask for, or "" when the zip is refused because cortex.yaml asks for it
// by name (and gets the warning the zip always had).
func lambdaImageChosen(s *spec.Spec, e *lambdazip.TooLargeError) string {
	if s.Targets.Lambda.Package != "" {
		return ""
	}
	if e.Unzipped {
		return fmt.Sprintf("the function's files are %.1f MB, over the %d MB Lambda allows a zip function unzipped", float64(e.Size)/(1<<20), e.Limit>>20)
	}
	return fmt.Sprintf("the zip is %.1f MB, over the %d MB Lambda takes as a zip uploaded directly", float64(e.Size)/(1<<20), e.Limit>>20)
}

// lambdaRepository is where the Lambda image goes: REGISTRY/NAME, with
// --registry, else targets.lambda.registry; "" when neither is set.
func (w *writer) lambdaRepository() string {
	repo := w.o.Registry
	if repo == "" {
		repo = w.a.Spec.Targets.Lambda.Registry
	}
	if repo == "" {
		return ""
	}
	return strings.TrimSuffix(repo, "/") + "/" + w.a.Spec.Name
}

// lambdaPlatform is the image of the Lambda's artifact: the one the other
// outputs share when one of them needs the image, else that artifact's
// alone (a Lambda-only write builds no other platform, and says nothing
// about Knative's registry).
func (w *writer) lambdaPlatform(ctx context.Context) (*platform, error) {
	outs, err := w.o.outputs()
	if err != nil {
		return nil, err
	}
	shared := w.platforms != nil || slices.ContainsFunc(outs, func(o Output) bool {
		return o == OutputLayout || o == OutputTarball || o == OutputKnative || o == OutputPush
	})
	if shared {
		if err := w.image(ctx); err != nil {
			return nil, err
		}
		for _, p := range w.platforms {
			if p.a == w.a {
				return p, nil
			}
		}
		return nil, fmt.Errorf("packager: no image for the Lambda's %s artifact", w.a.Arch)
	}
	p, err := w.platformImage(ctx, w.a)
	if err != nil {
		return nil, err
	}
	w.platforms = []*platform{p} // closed with the writer
	return p, nil
}

// writeLambdaImage writes the Lambda container image as an OCI layout,
// dist/lambda-image, its SAM template (PackageType Image) and its SBOM.
// why says why the image was chosen when cortex.yaml did not ask for it.
// An image Lambda would refuse (zstd layers, over 10 GB) gets a warning,
// as a zip too large does: the other outputs still serve.
func writeLambdaImage(ctx context.Context, w *writer, why string) error {
	a, o := w.a, w.o
	if why != "" {
		o.say("the Lambda package is a container image: %s (targets.lambda.package chooses)", why)
	}
	o.say("writing the Lambda container image (%s)", a.Arch)
	p, err := w.lambdaPlatform(ctx)
	if err != nil {
		return err
	}
	img, err := lambdaimage.Image(p.img.Image, "CORTEX_CONFIG="+path.Join(AppDir, ConfigName))
	if errors.Is(err, lambdaimage.ErrNotLambda) {
		w.warn("no Lambda image: %v", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("the Lambda image: %w", err)
	}
	var size, uncompressed int64
	for _, l := range p.img.Layers {
		size += l.Size
		if strings.HasPrefix(l.Name, "base") {
			uncompressed += l.Size
		}
	}
	for _, f := range slices.Concat(a.Runtime, a.Models, a.Stages, []artifact.File{a.Binary, a.Config}) {
		n, err := f.Size()
		if err != nil {
			return err
		}
		uncompressed += n
	}
	if err := lambdaimage.Check(img, a.Arch, uncompressed); err != nil {
		w.warn("no Lambda image: %v", err)
		return nil
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if err := oci.WriteLayout(filepath.Join(w.dir, LambdaImageDir), img, o.Tag); err != nil {
		return err
	}
	res := &LambdaImageResult{Layout: w.final(LambdaImageDir), Tag: o.Tag, Digest: d.String(), Arch: a.Arch, Size: size, Uncompressed: uncompressed}
	if repo := w.lambdaRepository(); repo != "" {
		res.Ref = repo + "@" + d.String()
	}

	sam, err := lambdazip.TemplateImage(w.lambdaSpec(a), res.Ref)
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
	name := res.Ref
	if name == "" {
		name = LambdaImageDir
	} else {
		name, _, _ = strings.Cut(name, "@")
	}
	out, err := w.imageSBOMOutput(p, name, d.String())
	if err != nil {
		return err
	}
	doc, err := fn.JSON(out)
	if err != nil {
		return fmt.Errorf("the Lambda image's SBOM: %w", err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "lambda-image.cdx.json"), doc, 0o644); err != nil {
		return err
	}
	w.r.Lambda = &LambdaResult{Package: spec.LambdaPackageImage, Reason: why, Image: res,
		Template: w.final("template.yaml"), SBOM: w.final("lambda-image.cdx.json")}
	if outs, _ := o.outputs(); res.Ref != "" && !slices.Contains(outs, OutputPush) {
		w.warn("the Lambda image is not pushed: the SAM template names %s; cortex deploy --target lambda (or cortex package --registry) pushes it", res.Ref)
	}
	if res.Ref == "" {
		w.warn("the Lambda image is in %s; cortex deploy --target lambda pushes it with --registry (or targets.lambda.registry, an Amazon ECR repository), and the SAM template asks for its ImageUri", res.Layout)
	}
	return nil
}

// pushLambdaImage pushes the Lambda image written in the output
// directory, when there is one, to REGISTRY/NAME:lambda: after the
// function image, so its layers, the same blobs, are there already and
// only its manifest and config are sent. The SAM template names it by
// digest.
func pushLambdaImage(ctx context.Context, w *writer) error {
	l := w.r.Lambda
	if l == nil || l.Image == nil || l.Image.Ref == "" {
		return nil
	}
	repo, _, _ := strings.Cut(l.Image.Ref, "@")
	dig, err := lambdaimage.Push(ctx, filepath.Join(w.dir, LambdaImageDir), repo, w.o.Progress, w.o.RemoteOptions...)
	if err != nil {
		return fmt.Errorf("pushing the Lambda image: %w", err)
	}
	l.Image.Pushed = dig.String()
	return nil
}
