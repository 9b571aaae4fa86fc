package sbom_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/cortexfn/cortex/packager/sbom"
	"github.com/cortexfn/cortex/packager/sbom/sbomtest"
)

// referrer makes an image and its SBOM referrer.
func referrer(t *testing.T) (img, ref v1.Image, doc []byte) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	doc = []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}`)
	ref, err = sbom.Referrer(doc, img, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return img, ref, doc
}

// checkReferrer checks the artifact manifest, and that it is a valid
// image to go-containerregistry.
func checkReferrer(t *testing.T, ref v1.Image, img v1.Image, doc []byte) {
	t.Helper()
	if err := validate.Image(ref); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	id, _ := img.Digest()
	if err := sbomtest.CheckReferrer(ref, id, doc); err != nil {
		t.Error(err)
	}
}

// TestReferrerPushed: a registry lists the pushed SBOM among the image's
// referrers (the OCI referrers API), with the SBOM's artifactType.
func TestReferrerPushed(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/acme/iris"
	img, ref, doc := referrer(t)
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := img.Digest()
	if err := remote.Write(r.Digest(id.String()), img); err != nil {
		t.Fatal(err)
	}
	got, err := sbom.Push(context.Background(), ref, repo)
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := ref.Digest()
	if got.String() != repo+"@"+rd.String() {
		t.Errorf("pushed %s, want %s@%s", got, repo, rd)
	}
	idx, err := remote.Referrers(r.Digest(id.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != rd || im.Manifests[0].ArtifactType != sbom.MediaType {
		t.Fatalf("referrers of the image: %+v, want the SBOM %s", im.Manifests, rd)
	}
	pulled, err := remote.Image(got)
	if err != nil {
		t.Fatal(err)
	}
	checkReferrer(t, pulled, img, doc)
}

// TestReferrerInLayout: the SBOM sits in the OCI layout beside its image,
// and the layout still passes go-containerregistry's validation.
func TestReferrerInLayout(t *testing.T) {
	img, ref, doc := referrer(t)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	if err := sbom.AppendLayout(dir, ref); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
	im, _ := idx.IndexManifest()
	rd, _ := ref.Digest()
	if len(im.Manifests) != 2 || im.Manifests[1].Digest != rd || im.Manifests[1].ArtifactType != sbom.MediaType {
		t.Fatalf("layout index %+v, want the image, then the SBOM %s", im.Manifests, rd)
	}
	read, err := idx.Image(rd)
	if err != nil {
		t.Fatal(err)
	}
	checkReferrer(t, read, img, doc)
}
