package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PasswordEnv holds the password of an encrypted private key, as it does
// for cosign.
const PasswordEnv = "COSIGN_PASSWORD"

// ErrKey: a key file is not a PEM ECDSA P-256 key.
var ErrKey = errors.New("sign: not a PEM ECDSA P-256 key")

// keyHelp says how to make a key, for errors about one.
const keyHelp = "make a pair with cosign generate-key-pair, or: openssl ecparam -name prime256v1 -genkey -noout -out cortex.key && openssl ec -in cortex.key -pubout -out cortex.pub"

// Signer signs images with one private key.
type Signer struct {
	sv signature.SignerVerifier
}

// LoadSigner reads the private key file at path (see the package
// documentation for the formats). password decrypts an encrypted key;
// nil is the empty password, which cosign's unprotected keys have.
func LoadSigner(path string, password []byte) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	if password == nil {
		password = []byte{}
	}
	key, err := cryptoutils.UnmarshalPEMToPrivateKey(b, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w: %w (an encrypted key needs its password in $%s; %s)", path, ErrKey, err, PasswordEnv, keyHelp)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s: %w: it is a %T (%s)", path, ErrKey, key, keyHelp)
	}
	sv, err := signature.LoadECDSASignerVerifier(ec, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return &Signer{sv: sv}, nil
}

// PublicKey is the key that verifies the signer's signatures.
func (s *Signer) PublicKey() crypto.PublicKey {
	pub, _ := s.sv.PublicKey() // an ECDSA signer's never fails
	return pub
}

// LoadPublicKey reads the public key file at path, for Verify: a PEM
// ("PUBLIC KEY") ECDSA P-256 key, as cosign and openssl write it. It is
// what a --verify KEY flag should call.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the public key: %w", err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w: %w (%s)", path, ErrKey, err, keyHelp)
	}
	if _, err := verifier(pub); err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return pub, nil
}

// verifier checks that pub is an ECDSA P-256 key and returns its verifier.
func verifier(pub crypto.PublicKey) (signature.Verifier, error) {
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: it is a %T (%s)", ErrKey, pub, keyHelp)
	}
	return signature.LoadECDSAVerifier(ec, crypto.SHA256)
}

// GenerateKeyPair makes an ECDSA P-256 key pair and returns it as PEM: the
// private key encrypted with password as cosign's are ("ENCRYPTED
// SIGSTORE PRIVATE KEY"), or, with an empty password, as plain PKCS#8;
// the public key as PKIX.
func GenerateKeyPair(password []byte) (private, public []byte, err error) {
	var pf cryptoutils.PassFunc
	if len(password) > 0 {
		pf = cryptoutils.StaticPasswordFunc(password)
	}
	return cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), pf)
}
