package packager_test

import (
	"bytes"
	"context"
	"crypto"
	"debug/buildinfo"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zip"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/dpkg"
	"github.com/cortexfn/cortex/packager/onnxruntime"
	"github.com/cortexfn/cortex/packager/sbom"
	"github.com/cortexfn/cortex/packager/sbom/sbomtest"
	"github.com/cortexfn/cortex/packager/sign"
)

// newKey writes a key pair and returns its signer and public key.
func newKey(t *testing.T) (*sign.Signer, crypto.PublicKey) {
	t.Helper()
	priv, pub, err := sign.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"cortex.key": priv, "cortex.pub": pub} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sign.LoadSigner(filepath.Join(dir, "cortex.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.LoadPublicKey(filepath.Join(dir, "cortex.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// readSBOM reads and validates an SBOM file.
func readSBOM(t *testing.T, p string) ([]byte, *cdx.BOM) {
	t.Helper()
	doc, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbomtest.Validate(doc)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return doc, bom
}

func zipHas(t *testing.T, p, name string) bool {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	_, err = zr.Open(name)
	return err == nil
}

// hasComponent checks that bom lists name at version.
func hasComponent(t *testing.T, what string, bom *cdx.BOM, name, version string) {
	t.Helper()
	c := sbomtest.Component(bom, name)
	if c == nil {
		t.Errorf("%s SBOM: no %s", what, name)
		return
	}
	if c.Version != version {
		t.Errorf("%s SBOM: %s at %q, want %q", what, name, c.Version, version)
	}
}

// TestSupplyChain packages iris, pushes it to an in-process registry and
// signs it: the image and the zip each have an SBOM that passes the
// CycloneDX schema and lists the binary's Go modules and the copied
// libraries with their versions; the image's SBOM is attached to it in
// the layout and in the registry; the registry holds the signatures, which
// verify with the public key and no other, and a retagged image is refused.
func TestSupplyChain(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/acme"
	signer, pub := newKey(t)
	r := pkg(t, iris, packager.Options{Registry: repo, Tag: "v1", Sign: signer})

	// The SBOMs.
	imageDoc, image := readSBOM(t, r.Image.SBOM.File)
	_, zipBOM := readSBOM(t, r.Lambda.SBOM)
	if c := image.Metadata.Component; c.Name != repo+"/iris" || c.Version != r.Image.Digest {
		t.Errorf("the image SBOM describes %s %s, want %s/iris %s", c.Name, c.Version, repo, r.Image.Digest)
	}
	if c := zipBOM.Metadata.Component; c.Name != "lambda.zip" || (*c.Hashes)[0].Value != r.Lambda.SHA256 {
		t.Errorf("the zip SBOM describes %s %+v, want lambda.zip %s", c.Name, c.Hashes, r.Lambda.SHA256)
	}
	bi, err := buildinfo.Read(bytes.NewReader(zipEntry(t, r.Lambda.Zip, "bootstrap")))
	if err != nil {
		t.Fatal(err)
	}
	for what, bom := range map[string]*cdx.BOM{"image": image, "zip": zipBOM} {
		for _, d := range bi.Deps {
			hasComponent(t, what, bom, d.Path, d.Version)
		}
		hasComponent(t, what, bom, "stdlib", bi.GoVersion)
		hasComponent(t, what, bom, "onnxruntime", onnxruntime.Version)
		if c := sbomtest.Component(bom, "iris.onnx"); c == nil || c.Type != cdx.ComponentTypeMachineLearningModel {
			t.Errorf("%s SBOM: model %+v", what, c)
		}
	}
	// The built-in base's packages (glibc, libstdc++, libgcc_s), as the
	// image records them.
	if len(r.Image.Base.Packages) == 0 {
		t.Logf("no Debian packages recorded (no dpkg here): files %v", r.Image.Base.Files)
	}
	for _, p := range r.Image.Base.Packages {
		pkg, err := dpkg.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		hasComponent(t, "image", image, pkg.Name, pkg.Version)
	}
	for _, name := range []string{"libc6", "libstdc++6", "libgcc-s1"} {
		if len(r.Image.Base.Packages) > 0 && sbomtest.Component(image, name) == nil {
			t.Errorf("image SBOM: no %s", name)
		}
	}
	// The zip's libstdc++, when shipped, is named by its package too.
	if pkgs, _, ok := dpkg.Lookup([]string{"/usr/lib/x86_64-linux-gnu/libstdc++.so.6"}); ok && len(pkgs) == 1 && zipHas(t, r.Lambda.Zip, "lib/libstdc++.so.6") {
		hasComponent(t, "zip", zipBOM, pkgs[0].Name, pkgs[0].Version)
	}

	// The image's SBOM in the layout: beside the image, referring to it.
	idx, err := layout.ImageIndexFromPath(r.Image.Layout)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Digest.String() != r.Image.Digest || im.Manifests[1].Digest.String() != r.Image.SBOM.Referrer {
		t.Fatalf("layout index %+v, want the image then its SBOM %s", im.Manifests, r.Image.SBOM.Referrer)
	}
	laid, err := idx.Image(im.Manifests[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	imageDigest, err := v1.NewHash(r.Image.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.CheckReferrer(laid, imageDigest, imageDoc); err != nil {
		t.Errorf("the SBOM in the layout: %v", err)
	}

	// In the registry: the image's referrers list it.
	imageRef, err := name.NewDigest(r.Pushed)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(imageRef)
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest.String() != r.Image.SBOM.Referrer || rm.Manifests[0].ArtifactType != sbom.MediaType {
		t.Fatalf("the image's referrers %+v, want its SBOM %s", rm.Manifests, r.Image.SBOM.Referrer)
	}
	pushed, err := remote.Image(imageRef.Context().Digest(r.Image.SBOM.Referrer))
	if err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.CheckReferrer(pushed, imageDigest, imageDoc); err != nil {
		t.Errorf("the SBOM in the registry: %v", err)
	}

	// The signatures: the image's, then its SBOM's, in the registry.
	if len(r.Signatures) != 2 {
		t.Fatalf("signatures %v, want the image's and the SBOM's", r.Signatures)
	}
	for i, ref := range []string{r.Pushed, r.Image.SBOM.Pushed} {
		d, err := name.NewDigest(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := sign.SignatureTag(d).String(); r.Signatures[i] != got {
			t.Errorf("signature %d is %s, want %s", i, r.Signatures[i], got)
		}
		if _, err := remote.Image(sign.SignatureTag(d)); err != nil {
			t.Errorf("the registry has no signature of %s: %v", ref, err)
		}
		if _, err := sign.Verify(context.Background(), ref, pub); err != nil {
			t.Errorf("Verify(%s): %v", ref, err)
		}
	}
	if got, err := sign.Verify(context.Background(), repo+"/iris:v1", pub); err != nil || got.String() != r.Pushed {
		t.Errorf("Verify of the tag = %s, %v; want %s", got, err, r.Pushed)
	}
	_, other := newKey(t)
	if _, err := sign.Verify(context.Background(), r.Pushed, other); !errors.Is(err, sign.ErrBadSignature) {
		t.Errorf("Verify with another key: %v, want ErrBadSignature", err)
	}
	// Someone pushes another image under the tag: it is not signed.
	forged, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(repo + "/iris:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, forged); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.Verify(context.Background(), repo+"/iris:v1", pub); !errors.Is(err, sign.ErrUnsigned) {
		t.Errorf("Verify of a retagged image: %v, want ErrUnsigned", err)
	}

	// The summary names them.
	var b bytes.Buffer
	r.WriteSummary(&b)
	for _, want := range []string{"image.cdx.json", "lambda.cdx.json", r.Signatures[0]} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %s:\n%s", want, b.String())
		}
	}
}

// TestSignRefused: signing needs the pushed image; that is said before
// anything is built.
func TestSignRefused(t *testing.T) {
	signer, _ := newKey(t)
	for _, tc := range []struct {
		name string
		o    packager.Options
		want string
	}{
		{"no registry", packager.Options{Sign: signer}, "--registry"},
		{"no push", packager.Options{Sign: signer, Registry: "registry.example/acme", Outputs: []packager.Output{packager.OutputLayout}}, "push"},
		{"no key", packager.Options{Registry: "registry.example/acme", Outputs: []packager.Output{packager.OutputPush, packager.OutputSign}}, "--sign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Out = filepath.Join(t.TempDir(), "dist")
			_, err := packager.Package(context.Background(), iris, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Package: %v, want an error naming %s", err, tc.want)
			}
			if _, err := os.Stat(tc.o.Out); !os.IsNotExist(err) {
				t.Errorf("%s exists after a refused package: %v", tc.o.Out, err)
			}
		})
	}
}
