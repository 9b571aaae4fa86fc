package packager

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/spec"
)

// ModelResult describes the model image pushed by Options.PushModel.
type ModelResult struct {
	// Ref is the model's reference for predictor.model (or a model's
	// path): oci://REGISTRY/REPO@sha256:...
	Ref string `json:"ref"`
	// Tag is the tag pushed (REGISTRY/REPO:TAG), Digest the manifest's.
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	// Files are the files in the image, under /models.
	Files  []string        `json:"files"`
	Layers []oci.LayerInfo `json:"layers"`
}

// checkPushModel checks Options.PushModel before anything is built.
func checkPushModel(ref string) error {
	if ref == "" {
		return nil
	}
	if _, err := name.NewTag(strings.TrimPrefix(ref, "oci://")); err != nil {
		return fmt.Errorf("--push-model %q: %w; give a repository and tag, e.g. ghcr.io/acme/iris-model:v1", ref, err)
	}
	return nil
}

// modelFiles returns the function's model files as a model image holds
// them, relative to /models: predictor.model's file and the external data
// it names relative to the model's directory (models/iris.onnx,
// models/weights.data), or a model directory's files below it; each model
// of a multi-model function under its name (models/NAME/..., for
// predictor.models_dir its subdirectories as they are). A file two models
// share is in the image under each.
func modelFiles(s *spec.Spec, models []artifact.File) ([]artifact.File, error) {
	byPath := map[string]artifact.File{}
	for _, f := range models {
		byPath[f.Path] = f
	}
	var out []artifact.File
	place := func(field, src, dst string) error {
		if spec.IsModelReference(src) {
			return nil // fetched at start: nothing here to push
		}
		src = path.Clean(strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(src, `\`, "/")), "/"))
		if f, ok := byPath[src]; ok { // a file: it, and its external data
			refs, _ := modelExternalData(f) // as Build read them
			f.Path = path.Join(dst, path.Base(src))
			out = append(out, f)
			for _, ref := range refs {
				p := path.Join(path.Dir(src), ref.Location)
				d, ok := byPath[p]
				if !ok {
					return fmt.Errorf("%s: %s: external data %s was not collected (a cortex bug)", field, src, p)
				}
				d.Path = path.Join(dst, ref.Location)
				if !slices.ContainsFunc(out, func(o artifact.File) bool { return o.Path == d.Path }) {
					out = append(out, d)
				}
			}
			return nil
		}
		found := false
		for _, f := range models { // a directory: everything below it
			if rest, ok := strings.CutPrefix(f.Path, src+"/"); ok {
				f.Path = path.Join(dst, rest)
				out = append(out, f)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s: %s ships no files", field, src)
		}
		return nil
	}
	p := s.Predictor
	var err error
	switch {
	case p.Model != "":
		err = place("predictor.model", p.Model, ".")
	case p.ModelsDir != "":
		err = place("predictor.models_dir", p.ModelsDir, ".")
	default:
		for i, m := range p.Models {
			if err = place(fmt.Sprintf("predictor.models[%d].path", i), m.Path, m.Name); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--push-model: %s ships no model files (predictor.model, predictor.models or predictor.models_dir name none here)", s.Name)
	}
	return out, nil
}

// pushModel pushes the function's models as an OCI image in KServe
// ModelCar's layout (oci.ModelImage) to Options.PushModel, the external
// data of ONNX models in a layer of its own, as in the function image.
// The layers come from the layer cache: a model the function image
// already holds is not read again.
func pushModel(ctx context.Context, w *writer) error {
	a, o := w.a, w.o
	files, err := modelFiles(a.Spec, a.Models)
	if err != nil {
		return err
	}
	graphs, data := splitModels(files)
	o.say("assembling the model image")
	img, err := oci.ModelImage(ctx, []oci.Layer{
		{Name: "model-data", Level: oci.Fast, Files: data},
		{Name: "model", Level: oci.Fast, Files: graphs},
	}, map[string]string{
		"org.opencontainers.image.title":       a.Spec.Name + " models",
		"org.opencontainers.image.description": "The models of Cortex function " + a.Spec.Name + ", under /models (KServe ModelCar layout)",
		"org.opencontainers.image.created":     a.Created.Format(time.RFC3339),
		"dev.cortexfn.function":                a.Spec.Name,
	}, oci.Options{Arch: a.Arch, Compression: o.Compression, Created: a.Created, CacheDir: o.CacheDir, NoCache: o.NoCache, Progress: o.Progress})
	if err != nil {
		return fmt.Errorf("assembling the model image: %w", err)
	}
	defer img.Close()
	tag := strings.TrimPrefix(o.PushModel, "oci://")
	dig, err := oci.Push(ctx, img.Image, tag, o.Progress, o.RemoteOptions...)
	if err != nil {
		return err
	}
	t, _ := name.NewTag(tag)
	res := &ModelResult{Ref: "oci://" + dig.String(), Tag: t.String(), Digest: img.Digest.String(), Layers: img.Layers}
	for _, f := range files {
		res.Files = append(res.Files, path.Join("/", oci.ModelsDir, f.Path))
	}
	slices.Sort(res.Files)
	w.r.Model = res
	return nil
}
