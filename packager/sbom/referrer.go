package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The OCI image spec's empty descriptor: the config of an artifact that
// needs none.
var (
	emptyJSON                      = []byte("{}")
	emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"
)

// FileName is the SBOM's title (org.opencontainers.image.title) in its
// referrer, the name `oras pull` writes it to.
const FileName = "sbom.cdx.json"

// Referrer returns the SBOM doc as an OCI artifact that refers to the
// image subject: an image manifest of artifactType MediaType, with the
// empty config, doc as its one blob, subject as its subject, and created
// as its org.opencontainers.image.created annotation.
func Referrer(doc []byte, subject v1.Image, created time.Time) (v1.Image, error) {
	sd, err := partial.Descriptor(subject)
	if err != nil {
		return nil, fmt.Errorf("describing the SBOM's image: %w", err)
	}
	blob := static.NewLayer(doc, MediaType)
	bd, err := blob.Digest()
	if err != nil {
		return nil, err
	}
	cd, csize, err := v1.SHA256(bytes.NewReader(emptyJSON))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  MediaType,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Digest: cd, Size: csize, Data: emptyJSON},
		Layers: []v1.Descriptor{{
			MediaType: MediaType, Digest: bd, Size: int64(len(doc)),
			Annotations: map[string]string{"org.opencontainers.image.title": FileName},
		}},
		// Only what identifies the image: a descriptor's annotations and
		// platform are not the subject's.
		Subject:     &v1.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size},
		Annotations: map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifactImage{
		manifest: raw,
		blobs:    map[v1.Hash]v1.Layer{bd: blob, cd: static.NewLayer(emptyJSON, emptyMediaType)},
	})
}

// artifactImage is an artifact manifest with its blobs in memory, as
// go-containerregistry's partial package completes into a v1.Image.
type artifactImage struct {
	manifest []byte
	blobs    map[v1.Hash]v1.Layer
}

func (a *artifactImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifactImage) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifactImage) RawConfigFile() ([]byte, error)      { return emptyJSON, nil }

func (a *artifactImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.blobs[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("the SBOM artifact has no blob %s", h)
}

// AppendLayout adds the referrer ref to the OCI image layout in dir, beside
// the image it refers to. It is not tagged: a tag names the image.
func AppendLayout(dir string, ref v1.Image) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return fmt.Errorf("opening OCI layout %s: %w", dir, err)
	}
	if err := p.AppendImage(ref); err != nil {
		return fmt.Errorf("adding the SBOM to OCI layout %s: %w", dir, err)
	}
	return nil
}

// Push uploads the referrer ref by its digest to repo (the image's
// repository, "ghcr.io/acme/iris") with the user's registry credentials,
// and returns its digest reference. A registry without the referrers API
// has go-containerregistry's fallback tag (sha256-DIGEST of the image)
// updated instead.
func Push(ctx context.Context, ref v1.Image, repo string, opts ...remote.Option) (name.Digest, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return name.Digest{}, fmt.Errorf("repository %q: %w", repo, err)
	}
	d, err := ref.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	dig := r.Digest(d.String())
	o := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.Write(dig, ref, o...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing the SBOM %s: %w", dig, err)
	}
	return dig, nil
}

var _ partial.CompressedImageCore = (*artifactImage)(nil)
