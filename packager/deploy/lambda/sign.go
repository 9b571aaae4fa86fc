package lambda

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigningTransport signs every request with AWS Signature Version 4 for
// the lambda service, as a function URL whose auth type is AWS_IAM
// requires, with cfg's credentials (retrieved, and refreshed, per request)
// and region, then sends it with base (http.DefaultTransport when nil).
// The caller's identity needs lambda:InvokeFunctionUrl on the function.
func SigningTransport(cfg aws.Config, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &signingTransport{base: base, creds: cfg.Credentials, region: cfg.Region, signer: v4.NewSigner(), now: time.Now}
}

type signingTransport struct {
	base   http.RoundTripper
	creds  aws.CredentialsProvider
	region string
	signer *v4.Signer
	now    func() time.Time
}

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := drain(req)
	if err != nil {
		return nil, err
	}
	if t.creds == nil {
		return nil, fmt.Errorf("signing the request to %s: no AWS credentials (the function URL's auth type is AWS_IAM)", req.URL.Host)
	}
	creds, err := t.creds.Retrieve(req.Context())
	if err != nil {
		return nil, fmt.Errorf("signing the request to %s: AWS credentials: %w", req.URL.Host, err)
	}
	// The request is the caller's: sign and send a copy.
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Body = http.NoBody
	}
	sum := sha256.Sum256(body)
	if err := t.signer.SignHTTP(req.Context(), creds, r, hex.EncodeToString(sum[:]), "lambda", t.region, t.now()); err != nil {
		return nil, fmt.Errorf("signing the request to %s: %w", req.URL.Host, err)
	}
	return t.base.RoundTrip(r)
}

// drain reads and closes req's body: the signature covers its hash.
func drain(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the request body to sign it: %w", err)
	}
	return b, nil
}
