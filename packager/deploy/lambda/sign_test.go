package lambda_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cortexfn/cortex/packager/deploy/lambda"
)

// A function URL with auth type AWS_IAM cannot run here; the server below
// checks each request's Signature Version 4 as it would: it signs again
// what the request says it signed, with the expected secret, and compares.

const (
	akid   = "AKIDEXAMPLE"
	secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// verifySigV4 checks r's Authorization header for the lambda service in
// region, signed with secret over body.
func verifySigV4(r *http.Request, body []byte, secret, region string) error {
	auth := r.Header.Get("Authorization")
	fields := map[string]string{}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("authorization %q is not AWS4-HMAC-SHA256", auth)
	}
	for f := range strings.SplitSeq(rest, ", ") {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	date := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		return fmt.Errorf("X-Amz-Date %q: %v", date, err)
	}
	scope := fmt.Sprintf("%s/%s/%s/lambda/aws4_request", akid, date[:8], region)
	if fields["Credential"] != scope {
		return fmt.Errorf("credential %q, want %q", fields["Credential"], scope)
	}
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	again.ContentLength = 0
	for h := range strings.SplitSeq(fields["SignedHeaders"], ";") {
		switch h {
		case "host", "x-amz-date":
		case "content-length":
			again.ContentLength = int64(len(body))
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), "lambda", region, t); err != nil {
		return err
	}
	if got := again.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signature does not match:\n got %s\nwant %s", auth, got)
	}
	return nil
}

// functionURL is a function behind an AWS_IAM function URL: 403 unless the
// request is signed, else it echoes the body.
func functionURL(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifySigV4(r, body, secret, region); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func signingClient(creds aws.CredentialsProvider) *http.Client {
	return &http.Client{Transport: lambda.SigningTransport(aws.Config{Region: region, Credentials: creds}, nil)}
}

func TestSigningTransport(t *testing.T) {
	srv := functionURL(t)
	c := signingClient(credentials.NewStaticCredentialsProvider(akid, secret, ""))
	for _, tc := range []struct {
		method, path, body string
	}{
		{http.MethodPost, "/predict", `{"inputs":[]}`},
		{http.MethodPost, "/v2/models/iris/infer?x=1&a=b%20c", `{}`},
		{http.MethodGet, "/v2/models/iris", ""},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(got) != tc.body {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, got)
		}
		if req.Header.Get("Authorization") != "" {
			t.Errorf("%s %s: the caller's request was changed", tc.method, tc.path)
		}
	}
}

// TestVerifySigV4Refuses shows the check above can fail: a plain request,
// another secret and a changed body are all refused.
func TestVerifySigV4Refuses(t *testing.T) {
	srv := functionURL(t)
	post := func(c *http.Client) int {
		resp, err := c.Post(srv.URL+"/predict", "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(http.DefaultClient); got != http.StatusForbidden {
		t.Errorf("unsigned: %d, want 403", got)
	}
	if got := post(signingClient(credentials.NewStaticCredentialsProvider(akid, "another secret", ""))); got != http.StatusForbidden {
		t.Errorf("another secret: %d, want 403", got)
	}
	tamper := &http.Client{Transport: lambda.SigningTransport(aws.Config{Region: region,
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
		return http.DefaultTransport.RoundTrip(r)
	}))}
	if got := post(tamper); got != http.StatusForbidden {
		t.Errorf("body changed after signing: %d, want 403", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSigningTransportWithoutCredentials(t *testing.T) {
	srv := functionURL(t)
	for name, creds := range map[string]aws.CredentialsProvider{
		"none":   nil,
		"failed": aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return aws.Credentials{}, fmt.Errorf("no SSO session") }),
	} {
		_, err := signingClient(creds).Post(srv.URL, "application/json", strings.NewReader("{}"))
		if err == nil || !strings.Contains(err.Error(), "signing the request") {
			t.Errorf("%s: got %v, want an error about signing", name, err)
		}
	}
}
