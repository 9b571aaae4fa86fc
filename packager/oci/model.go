package oci

import (
	"context"
	"fmt"
	"maps"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cortexfn/cortex/packager/artifact"
)

// ModelsDir is where a model image holds its files: KServe's ModelCar
// layout (an image with the model under /models, which KServe links into
// the predictor as /mnt/models), which the cortex runtime's oci:// model
// fetcher reads too.
const ModelsDir = "models"

// ModelImage builds an image that carries models and nothing else: each
// of layers (non-empty ones) holds its files under /models/ (Paths are
// relative to it), built through the same layer cache as a function
// image, so a model already packaged with a function is not read again.
//
// The image has no base and no entrypoint: it is data, the way a
// ModelCar image's model layers are. Its config is an ordinary OCI image
// config, so registries, crane and skopeo treat it as any image; os and
// architecture are set to linux and Options.Arch because the image
// specification requires them, though the weights serve every platform
// (no image index is made). KServe runs a ModelCar as a sidecar whose
// command is a shell: to use this image that way, put it on a base with
// one (crane rebase, or COPY --from it in a Dockerfile); cortex's own
// fetcher needs nothing but the layers.
func ModelImage(ctx context.Context, layers []Layer, labels map[string]string, o Options) (*Image, error) {
	out, lb, err := o.start()
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
		}
	}()
	var ls []Layer
	for _, l := range layers {
		if len(l.Files) == 0 {
			continue
		}
		l.Files = artifact.Under(ModelsDir, l.Files)
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("a model image needs model files")
	}
	built, err := buildLayers(ctx, lb, ls)()
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = appendLayers(img, built, out, o, "cortex package --push-model"); err != nil {
		return nil, err
	}
	if img, err = withConfig(img, func(cf *v1.ConfigFile) {
		o.stamp(cf)
		cf.Config.Labels = maps.Clone(labels)
	}); err != nil {
		return nil, err
	}
	out.Image = img
	if out.Digest, err = img.Digest(); err != nil {
		return nil, err
	}
	ok = true
	return out, nil
}

// how says in a progress line how a layer was built.
func how(b builtLayer) string {
	switch {
	case b.stats.cached && b.stats.read == 0:
		return "cached, not read"
	case b.stats.cached:
		return "cached"
	}
	return "compressed in " + b.took.Round(time.Millisecond).String()
}
