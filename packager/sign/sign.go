package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Cosign's names for a signature's parts.
const (
	// SimpleSigningMediaType is the media type of a signature layer: the
	// signed payload.
	SimpleSigningMediaType types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds the base64 signature of the layer's
	// payload.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
)

// maxPayload bounds a signature payload read from a registry: cosign's are
// a few hundred bytes.
const maxPayload = 1 << 20

// Errors Verify returns, wrapped with the image's reference.
var (
	// ErrUnsigned: the image has no signature.
	ErrUnsigned = errors.New("sign: the image is not signed")
	// ErrBadSignature: no signature of the image verifies with the key
	// and names the image's digest.
	ErrBadSignature = errors.New("sign: no signature of the image verifies with the key")
)

// SignatureTag is where cosign keeps the signatures of the image d: the tag
// sha256-HEX.sig in d's repository.
func SignatureTag(d name.Digest) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
}

// Sign signs the image ref (a digest reference, repo@sha256:...) and
// pushes the signature to SignatureTag(ref), keeping the signatures
// already there; when this key has signed the image before, nothing is
// pushed. It returns the signature's tag.
func (s *Signer) Sign(ctx context.Context, ref string, opts ...remote.Option) (name.Tag, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		return name.Tag{}, fmt.Errorf("signing %q: a digest reference (repo@sha256:...) is needed: %w", ref, err)
	}
	body, err := json.Marshal(payload.Cosign{Image: d})
	if err != nil {
		return name.Tag{}, err
	}
	sig, err := s.sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		return name.Tag{}, fmt.Errorf("signing %s: %w", d, err)
	}
	tag := SignatureTag(d)
	o := remoteOptions(ctx, opts)
	base, err := remote.Image(tag, o...)
	switch {
	case notFound(err):
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	case err != nil:
		return name.Tag{}, fmt.Errorf("reading the signatures of %s: %w", d, err)
	default:
		if n, err := verifyAll(base, d, s.sv); err == nil && n > 0 {
			return tag, nil // signed with this key already
		}
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(body, SimpleSigningMediaType),
		Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		return name.Tag{}, err
	}
	if err := remote.Write(tag, img, o...); err != nil {
		return name.Tag{}, fmt.Errorf("pushing the signature %s: %w", tag, err)
	}
	return tag, nil
}

// Verify checks that the image ref (a tag, resolved once here, or a
// digest reference) is signed with the private key of pub, as Sign and
// cosign sign it, and returns the digest reference it verified: deploy
// that, not the tag, which may move. It returns an error wrapping
// ErrUnsigned when the image has no signature, and ErrBadSignature when
// none of its signatures verifies with pub and names its digest.
// opts are added to the registry calls (credentials default to the
// user's docker config, as a push's).
func Verify(ctx context.Context, ref string, pub crypto.PublicKey, opts ...remote.Option) (name.Digest, error) {
	v, err := verifier(pub)
	if err != nil {
		return name.Digest{}, err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("image %q: %w", ref, err)
	}
	o := remoteOptions(ctx, opts)
	d, ok := r.(name.Digest)
	if !ok {
		desc, err := remote.Head(r, o...)
		if err != nil {
			return name.Digest{}, fmt.Errorf("resolving %s: %w", r, err)
		}
		d = r.Context().Digest(desc.Digest.String())
	}
	sigs, err := remote.Image(SignatureTag(d), o...)
	if notFound(err) {
		return d, fmt.Errorf("%w: %s has no signature (%s)", ErrUnsigned, d, SignatureTag(d))
	}
	if err != nil {
		return d, fmt.Errorf("reading the signatures of %s: %w", d, err)
	}
	n, err := verifyAll(sigs, d, v)
	if err != nil {
		return d, fmt.Errorf("verifying %s: %w", d, err)
	}
	if n == 0 {
		return d, fmt.Errorf("%w: %s", ErrUnsigned, d)
	}
	return d, nil
}

// verifyAll checks the signatures in sigs (an image at a SignatureTag)
// against the image d with v: it returns how many signatures there are
// when one verifies, and an error wrapping ErrBadSignature saying why each
// failed when none does.
func verifyAll(sigs v1.Image, d name.Digest, v signature.Verifier) (int, error) {
	m, err := sigs.Manifest()
	if err != nil {
		return 0, err
	}
	var why []string
	n := 0
	for _, l := range m.Layers {
		if l.MediaType != SimpleSigningMediaType {
			continue
		}
		n++
		err := verifyOne(sigs, l, d, v)
		if err == nil {
			return n, nil
		}
		why = append(why, err.Error())
	}
	if n == 0 {
		return 0, nil
	}
	return n, fmt.Errorf("%w (%d signatures: %s)", ErrBadSignature, n, strings.Join(why, "; "))
}

// verifyOne checks one signature layer: its signature over its payload,
// then that the payload names the image d.
func verifyOne(sigs v1.Image, l v1.Descriptor, d name.Digest, v signature.Verifier) error {
	sig, err := base64.StdEncoding.DecodeString(l.Annotations[SignatureAnnotation])
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("layer %s has no %s annotation", l.Digest, SignatureAnnotation)
	}
	layer, err := sigs.LayerByDigest(l.Digest)
	if err != nil {
		return err
	}
	rc, err := layer.Compressed() // checked against l.Digest as it is read
	if err != nil {
		return err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxPayload+1))
	if err != nil {
		return fmt.Errorf("reading layer %s: %w", l.Digest, err)
	}
	if len(body) > maxPayload {
		return fmt.Errorf("layer %s is larger than a signature payload", l.Digest)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body)); err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("layer %s: payload: %w", l.Digest, err)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return fmt.Errorf("layer %s: payload type %q, want %q", l.Digest, p.Critical.Type, payload.CosignSignatureType)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != d.DigestStr() {
		return fmt.Errorf("layer %s: the signature is for %s, not %s", l.Digest, got, d.DigestStr())
	}
	return nil
}

func remoteOptions(ctx context.Context, opts []remote.Option) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
}

// notFound reports whether err is a registry's "no such manifest".
func notFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
