// Package sign signs a pushed image with a key the way cosign does, and
// verifies such a signature, offline but for the registry: no Fulcio, no
// Rekor, no network beyond the image's own repository.
//
// # Signature format
//
// A signature is cosign's: the simple-signing payload (sigstore's
// payload.Cosign: critical.identity.docker-reference is the image's
// repository, critical.image.docker-manifest-digest its manifest digest,
// critical.type "cosign container image signature"), signed with ECDSA
// P-256 over its SHA-256 (ASN.1 DER, base64 in the layer's
// dev.cosignproject.cosign/signature annotation), stored as a layer of
// media type application/vnd.dev.cosign.simplesigning.v1+json in an image
// tagged sha256-HEX.sig in the image's repository. Signing an image that
// already has signatures adds a layer, as cosign does, unless the same key
// already signed it. So `cosign verify --key cortex.pub
// --insecure-ignore-tlog REPO@DIGEST` accepts what Sign writes, and Verify
// accepts what `cosign sign --key cosign.key --tlog-upload=false` writes.
// The signing is sigstore's (github.com/sigstore/sigstore pkg/signature
// and pkg/cryptoutils); this package only places it.
//
// # Keys
//
// Keys are PEM files of an ECDSA P-256 key, cosign's kind:
//
//   - private: PKCS#8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY", what
//     `openssl ecparam -name prime256v1 -genkey -noout` writes), or
//     encrypted: cosign's ("ENCRYPTED SIGSTORE PRIVATE KEY" or "ENCRYPTED
//     COSIGN PRIVATE KEY", from `cosign generate-key-pair`) and PKCS#8
//     ("ENCRYPTED PRIVATE KEY", `openssl pkcs8 -topk8`), whose password
//     LoadSigner takes ($COSIGN_PASSWORD in the CLI, as cosign reads it;
//     never prompted for);
//   - public: PKIX ("PUBLIC KEY"), as `openssl ec -pubout` and cosign write.
//
// GenerateKeyPair writes a pair in cosign's formats. RSA and Ed25519 keys
// are refused: one kind keeps what a verifier must accept small.
//
// Verify refuses an image with no signature (ErrUnsigned) and one whose
// signatures do not verify with the key or name another digest
// (ErrBadSignature). It checks the digest, not the docker-reference: an
// image copied to another repository with its signature still verifies,
// as with cosign.
//
// It owns the signature's format and the keys; it talks to the registry
// through go-containerregistry and must not import packager, packager/oci,
// packager/sbom or packager/deploy: it signs and verifies any image by
// digest, whoever built it.
package sign
