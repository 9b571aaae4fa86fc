package oci

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RefNameAnnotation tags an image inside an OCI layout (`skopeo inspect
// oci:DIR:TAG`, `umoci unpack --image DIR:TAG`).
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes img as an OCI image layout in dir (created if
// needed), tagged tag. The layout holds a single-platform image manifest
// (WriteIndexLayout writes an index of platforms); its descriptor in
// index.json names the
// platform (os, architecture, variant), so a tool choosing by platform
// finds it without reading the config.
func WriteLayout(dir string, img v1.Image, tag string) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	linkBlobs(dir, img)
	platform := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefNameAnnotation: tag}), layout.WithPlatform(platform)); err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	return nil
}

// WriteTarball writes img as a tarball that `docker load` and `podman
// load` read, tagged ref (for example "cortex.local/iris:latest").
func WriteTarball(path string, img v1.Image, ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", ref, err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("writing image tarball %s: %w", path, err)
	}
	return nil
}

// Push uploads img to ref (a tag, for example ghcr.io/acme/iris:latest)
// with the user's registry credentials (docker config and credential
// helpers). Blobs the registry already has are not uploaded again, so an
// unchanged model layer costs one HEAD request. It returns the pushed
// image's digest reference (repo@sha256:...). progress, when set, receives
// a line as the push starts and ends; opts are added to the remote options
// (tests pass a transport).
func Push(ctx context.Context, img v1.Image, ref string, progress io.Writer, opts ...remote.Option) (name.Digest, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("registry reference %q: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	if progress != nil {
		fmt.Fprintf(progress, "pushing %s\n", tag)
	}
	o := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.Write(tag, img, o...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", tag, err)
	}
	dig := tag.Context().Digest(d.String())
	if progress != nil {
		fmt.Fprintf(progress, "pushed %s\n", dig)
	}
	return dig, nil
}

func hostArch() string { return goruntime.GOARCH }

// Index returns an OCI image index of imgs, one per platform, each
// descriptor naming its platform (os, architecture, variant) from the
// image's config, so a runtime pulling the index picks its own.
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("building the image index: %w", err)
		}
		mt, err := img.MediaType()
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: mt,
			Platform:  &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
		}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(idx, adds...), nil
}

// WriteIndexLayout writes the image index idx, with its images, as an OCI
// image layout in dir, tagged tag: index.json names the index, which
// names an image per platform (`skopeo inspect --raw oci:DIR:TAG` reads
// it; `skopeo copy --override-arch` picks one).
func WriteIndexLayout(dir string, idx v1.ImageIndex, tag string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	if m, err := idx.IndexManifest(); err == nil {
		for _, d := range m.Manifests {
			if img, err := idx.Image(d.Digest); err == nil {
				linkBlobs(dir, img)
			}
		}
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: tag})); err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	return nil
}

// WriteTarballs writes several images into one tarball that `docker load`
// reads, each under its own tag (ref to image). A docker tarball holds no
// index, so a multi-platform image goes there as one tag per platform.
func WriteTarballs(path string, imgs map[string]v1.Image) error {
	refs := map[name.Reference]v1.Image{}
	for ref, img := range imgs {
		tag, err := name.NewTag(ref)
		if err != nil {
			return fmt.Errorf("image tag %q: %w", ref, err)
		}
		refs[tag] = img
	}
	if err := tarball.MultiRefWriteToFile(path, refs); err != nil {
		return fmt.Errorf("writing image tarball %s: %w", path, err)
	}
	return nil
}

// PushIndex uploads the image index idx and its images to ref (a tag), as
// Push does one image, and returns the index's digest reference.
func PushIndex(ctx context.Context, idx v1.ImageIndex, ref string, progress io.Writer, opts ...remote.Option) (name.Digest, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("registry reference %q: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	if progress != nil {
		fmt.Fprintf(progress, "pushing %s (an image index)\n", tag)
	}
	o := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.WriteIndex(tag, idx, o...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", tag, err)
	}
	dig := tag.Context().Digest(d.String())
	if progress != nil {
		fmt.Fprintf(progress, "pushed %s\n", dig)
	}
	return dig, nil
}

// linkBlobs hard-links the layers img takes from the layer cache into the
// layout at dir before ggcr writes it, which then finds them in place
// (it skips a blob of the right size): a multi-GB model layer is not
// copied a second time. Where a link cannot be made (another file system)
// ggcr copies the blob as usual. The cache's blobs are read-only, so
// neither name can be changed through the other by accident.
func linkBlobs(dir string, img v1.Image) {
	layers, err := img.Layers()
	if err != nil {
		return
	}
	for _, l := range layers {
		b, ok := l.(*blobLayer)
		if !ok {
			continue
		}
		blobs := filepath.Join(dir, "blobs", b.digest.Algorithm)
		if os.MkdirAll(blobs, 0o755) != nil {
			return
		}
		_ = os.Link(b.path, filepath.Join(blobs, b.digest.Hex))
	}
}
