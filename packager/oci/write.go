package oci

import (
	"context"
	"fmt"
	"io"
	goruntime "runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RefNameAnnotation tags an image inside an OCI layout (`skopeo inspect
// oci:DIR:TAG`, `umoci unpack --image DIR:TAG`).
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes img as an OCI image layout in dir (created if
// needed), tagged tag. The layout holds a single-platform image manifest,
// never an index of platforms; its descriptor in index.json names the
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
