// Package s3 fetches models named s3://BUCKET/KEY with the AWS SDK for
// Go v2 and the standard credential chain (environment, shared config and
// credentials files, SSO, web identity, container and instance roles).
// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points it at an S3-compatible
// store, which is then addressed path-style (BUCKET in the path, as MinIO
// and most such stores need).
//
// With a digest (predictor.model_sha256) the object is checked against it
// and cached by it, like an https:// model. Without one it is cached by
// bucket, key, ETag and size: a changed object is fetched again, but its
// content is not verified, and the start logs so with the digest it
// computed, to pin.
//
// The SDK signs a GET for the object (a presigned URL) and
// runtime/modelfetch downloads it, so an S3 model gets the same parallel
// ranges, streaming hash and progress as any other.
//
// Importing this package registers the s3 scheme with modelfetch; the
// generated main of a function imports it only when the function names an
// s3:// model, because it links the AWS SDK (ARCHITECTURE.md, Rationale).
package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cortexfn/cortex/runtime/modelfetch"
)

func init() { modelfetch.Register("s3", &Fetcher{}) }

// Fetcher fetches s3:// models. Its zero value loads the AWS
// configuration on first use.
type Fetcher struct {
	once   sync.Once
	client *s3.Client
	err    error
}

func (f *Fetcher) init(ctx context.Context) error {
	f.once.Do(func() {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			f.err = fmt.Errorf("loading the AWS configuration: %w", err)
			return
		}
		if cfg.Region == "" {
			cfg.Region = "us-east-1" // S3's global endpoint; AWS_REGION names another
		}
		custom := os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
		f.client = s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = custom })
	})
	return f.err
}

// Fetch finds the object's ETag and size, and fetches it unless the cache
// has it.
func (f *Fetcher) Fetch(ctx context.Context, c *modelfetch.Cache, r modelfetch.Ref) (string, error) {
	if err := f.init(ctx); err != nil {
		return "", err
	}
	bucket, key, _ := strings.Cut(r.Rest, "/")
	k := "sha256/" + r.SHA256
	if r.SHA256 != "" {
		if dir, ok := c.Complete(k); ok { // verified content needs no S3 request
			return dir, nil
		}
	}
	head, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "", err
	}
	etag := aws.ToString(head.ETag)
	size := aws.ToInt64(head.ContentLength)
	if r.SHA256 == "" {
		id := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", bucket, key, etag, size))
		k = "s3/" + hex.EncodeToString(id[:])
	}
	dir, fetched, err := c.Entry(ctx, k, func(ctx context.Context, staging string) error {
		in := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
		h := http.Header{}
		if etag != "" { // the object HeadObject described, not a newer one
			in.IfMatch = &etag
			h.Set("If-Match", etag)
		}
		req, err := s3.NewPresignClient(f.client, s3.WithPresignExpires(time.Hour)).PresignGetObject(ctx, in)
		if err != nil {
			return err
		}
		for name, vs := range req.SignedHeader {
			if !strings.EqualFold(name, "Host") {
				h[name] = vs
			}
		}
		sum, _, err := c.Download(ctx, modelfetch.Source{Ref: r.Raw, URL: req.URL, Client: c.HTTPClient(), Header: h, SHA256: r.SHA256}, filepath.Join(staging, modelfetch.FileName(key)))
		if err == nil && r.SHA256 == "" {
			c.Logger().Warn("model not verified: no sha256 given; it is cached by bucket, key, ETag and size", "model", r.Raw, "sha256", sum,
				"fix", "add the sha256 to cortex.yaml (predictor.model_sha256 or models[].sha256) to verify it")
		}
		return err
	})
	if err == nil && !fetched && r.SHA256 == "" {
		c.Logger().Info("model not verified: cached by bucket, key, ETag and size", "model", r.Raw)
	}
	return dir, err
}

var _ modelfetch.Fetcher = (*Fetcher)(nil)
