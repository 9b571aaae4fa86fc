package sign_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cortexfn/cortex/packager/sign"
)

var ctx = context.Background()

// newRepo starts an in-process registry and returns a repository in it.
func newRepo(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") + "/acme/iris"
}

// push pushes a new random image to repo:tag and returns its digest
// reference.
func push(t *testing.T, repo, tag string) string {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return repo + "@" + d.String()
}

// keyPair writes a new key pair and returns the files.
func keyPair(t *testing.T, password string) (private, public string) {
	t.Helper()
	priv, pub, err := sign.GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	private, public = filepath.Join(dir, "cortex.key"), filepath.Join(dir, "cortex.pub")
	if err := os.WriteFile(private, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(public, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return private, public
}

func signer(t *testing.T, path, password string) *sign.Signer {
	t.Helper()
	s, err := sign.LoadSigner(path, []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publicKey(t *testing.T, path string) *ecdsa.PublicKey {
	t.Helper()
	pub, err := sign.LoadPublicKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return pub.(*ecdsa.PublicKey)
}

func sigTag(t *testing.T, ref string) name.Tag {
	t.Helper()
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatal(err)
	}
	return sign.SignatureTag(d)
}

func signatures(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := remote.Image(sigTag(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestSignVerify: what Sign pushes is cosign's format, checked here with
// the standard library alone, and Verify accepts it, by digest or by tag.
func TestSignVerify(t *testing.T) {
	repo := newRepo(t)
	ref := push(t, repo, "v1")
	priv, pub := keyPair(t, "")
	tag, err := signer(t, priv, "").Sign(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	hex := ref[strings.Index(ref, "@sha256:")+len("@sha256:"):]
	if want := repo + ":sha256-" + hex + ".sig"; tag.String() != want {
		t.Errorf("signature tag %s, want %s", tag, want)
	}

	// cosign's layout: one simple-signing layer whose annotation is the
	// base64 ASN.1 ECDSA signature of the payload's SHA-256.
	sigs := signatures(t, ref)
	m, err := sigs.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("signature manifest %+v", m)
	}
	l, err := sigs.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := l.Compressed()
	body, _ := io.ReadAll(rc)
	rc.Close()
	var p struct {
		Critical struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if c := p.Critical; c.Identity.DockerReference != repo || c.Image.DockerManifestDigest != "sha256:"+hex || c.Type != "cosign container image signature" {
		t.Errorf("payload %s", body)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Layers[0].Annotations["dev.cosignproject.cosign/signature"])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(publicKey(t, pub), digest[:], sig) {
		t.Error("the signature does not verify with crypto/ecdsa")
	}

	for _, r := range []string{ref, repo + ":v1"} {
		got, err := sign.Verify(ctx, r, publicKey(t, pub))
		if err != nil || got.String() != ref {
			t.Errorf("Verify(%s) = %s, %v; want %s", r, got, err, ref)
		}
	}

	// Signing again with the same key adds nothing.
	if _, err := signer(t, priv, "").Sign(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if m, _ := signatures(t, ref).Manifest(); len(m.Layers) != 1 {
		t.Errorf("signed twice with one key: %d signatures, want 1", len(m.Layers))
	}
	// Another key's signature is added beside it; both verify.
	priv2, pub2 := keyPair(t, "")
	if _, err := signer(t, priv2, "").Sign(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if m, _ := signatures(t, ref).Manifest(); len(m.Layers) != 2 {
		t.Errorf("signed by two keys: %d signatures, want 2", len(m.Layers))
	}
	for _, k := range []string{pub, pub2} {
		if _, err := sign.Verify(ctx, ref, publicKey(t, k)); err != nil {
			t.Errorf("Verify with %s after a second signature: %v", k, err)
		}
	}
}

// TestVerifyRefuses: an unsigned image, a signature by another key, and
// every way of tampering with a signature or the image are refused.
func TestVerifyRefuses(t *testing.T) {
	repo := newRepo(t)
	priv, pub := keyPair(t, "")
	s := signer(t, priv, "")
	_, otherPub := keyPair(t, "")

	// pushSigned pushes a new image to repo:tag and signs it.
	pushSigned := func(t *testing.T, tag string) string {
		t.Helper()
		ref := push(t, repo, tag)
		if _, err := s.Sign(ctx, ref); err != nil {
			t.Fatal(err)
		}
		return ref
	}
	// rewrite replaces the signature of ref with one layer made by edit
	// from the genuine layer's payload and signature.
	rewrite := func(t *testing.T, ref string, edit func(payload []byte, sig string) ([]byte, string)) {
		t.Helper()
		sigs := signatures(t, ref)
		m, _ := sigs.Manifest()
		l, _ := sigs.LayerByDigest(m.Layers[0].Digest)
		rc, _ := l.Compressed()
		body, _ := io.ReadAll(rc)
		rc.Close()
		body, sig := edit(body, m.Layers[0].Annotations[sign.SignatureAnnotation])
		base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		forged, err := mutate.Append(base, mutate.Addendum{
			Layer:       static.NewLayer(body, sign.SimpleSigningMediaType),
			Annotations: map[string]string{sign.SignatureAnnotation: sig},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(sigTag(t, ref), forged); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (ref string)
		key   string
		want  error
	}{
		{"unsigned", func(t *testing.T) string { return push(t, repo, "unsigned") }, pub, sign.ErrUnsigned},
		{"another key", func(t *testing.T) string { return pushSigned(t, "other") }, otherPub, sign.ErrBadSignature},
		{"signature altered", func(t *testing.T) string {
			ref := pushSigned(t, "altered")
			rewrite(t, ref, func(p []byte, sig string) ([]byte, string) {
				b, _ := base64.StdEncoding.DecodeString(sig)
				b[len(b)-1] ^= 1
				return p, base64.StdEncoding.EncodeToString(b)
			})
			return ref
		}, pub, sign.ErrBadSignature},
		{"payload altered", func(t *testing.T) string {
			ref := pushSigned(t, "payload")
			rewrite(t, ref, func(p []byte, sig string) ([]byte, string) {
				return bytes.Replace(p, []byte(`"optional":null`), []byte(`"optional":{"by":"mallory"}`), 1), sig
			})
			return ref
		}, pub, sign.ErrBadSignature},
		{"another image's signature", func(t *testing.T) string {
			signed := pushSigned(t, "genuine")
			ref := push(t, repo, "impostor")
			sigs := signatures(t, signed)
			if err := remote.Write(sigTag(t, ref), sigs); err != nil {
				t.Fatal(err)
			}
			return ref
		}, pub, sign.ErrBadSignature},
		{"tag moved to an unsigned image", func(t *testing.T) string {
			pushSigned(t, "moved")
			push(t, repo, "moved")
			return repo + ":moved"
		}, pub, sign.ErrUnsigned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.setup(t)
			d, err := sign.Verify(ctx, ref, publicKey(t, tc.key))
			if !errors.Is(err, tc.want) {
				t.Errorf("Verify(%s) = %s, %v; want %v", ref, d, err, tc.want)
			}
		})
	}
}

// TestKeys: the key formats LoadSigner and LoadPublicKey read, and those
// they refuse.
func TestKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec) // openssl ecparam -genkey
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	encrypted, _ := keyPair(t, "s3cret")
	plain, plainPub := keyPair(t, "")

	for _, tc := range []struct {
		name, path, password string
		ok                   bool
	}{
		{"PKCS#8", plain, "", true},
		{"SEC 1 (openssl ecparam)", write("sec1.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})), "", true},
		{"cosign's encrypted", encrypted, "s3cret", true},
		{"cosign's encrypted, wrong password", encrypted, "guess", false},
		{"cosign's encrypted, no password", encrypted, "", false},
		{"P-384", write("p384.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384der})), "", false},
		{"RSA", write("rsa.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER})), "", false},
		{"not PEM", write("junk.key", []byte("not a key")), "", false},
		{"a public key", plainPub, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sign.LoadSigner(tc.path, []byte(tc.password))
			if tc.ok {
				if err != nil {
					t.Fatalf("LoadSigner: %v", err)
				}
				if _, ok := s.PublicKey().(*ecdsa.PublicKey); !ok {
					t.Errorf("public key %T", s.PublicKey())
				}
				return
			}
			if !errors.Is(err, sign.ErrKey) {
				t.Errorf("LoadSigner = %v, want an error wrapping ErrKey", err)
			}
		})
	}

	pub := publicKey(t, plainPub)
	if !pub.Equal(signer(t, plain, "").PublicKey()) {
		t.Error("the public key file is not the signer's public key")
	}
	for _, bad := range []string{write("rsa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPub})), plain} {
		if _, err := sign.LoadPublicKey(bad); !errors.Is(err, sign.ErrKey) {
			t.Errorf("LoadPublicKey(%s) = %v, want an error wrapping ErrKey", filepath.Base(bad), err)
		}
	}
	if _, err := sign.Verify(ctx, "registry.example/acme/iris@sha256:"+strings.Repeat("0", 64), &rsaKey.PublicKey); !errors.Is(err, sign.ErrKey) {
		t.Errorf("Verify with an RSA key = %v, want ErrKey before any registry call", err)
	}
}
