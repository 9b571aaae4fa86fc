package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/cortexfn/cortex/runtime/modelfetch"
	_ "github.com/cortexfn/cortex/runtime/modelfetch/s3"
)

// The S3 server is gofakes3 (github.com/johannesboyne/gofakes3, v1.2.0)
// with its in-memory backend, in this process: it speaks the S3 protocol
// the SDK does (HeadObject, GetObject, ranges, ETags), without AWS. It
// checks no signatures, so it shows what is sent, not that AWS would
// accept the credentials.

var (
	objectGets atomic.Int64 // GETs of an object (not of a bucket)
	client     *s3.Client
)

func TestMain(m *testing.M) {
	faker := gofakes3.New(s3mem.New())
	h := faker.Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1 {
			objectGets.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	// The standard chain, pointed at the server and kept from the
	// machine's own AWS configuration.
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3":         srv.URL,
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_REGION":                  "us-east-1",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		os.Setenv(k, v)
	}
	client = s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("models-a")}); err != nil {
		panic(err)
	}
	code := m.Run()
	srv.Close()
	os.Exit(code)
}

func put(t *testing.T, key string, b []byte) {
	t.Helper()
	if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("models-a"), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func random(n int) []byte { b := make([]byte, n); rand.Read(b); return b }

func cache(t *testing.T, dir string) *modelfetch.Cache {
	t.Helper()
	c, err := modelfetch.New(modelfetch.WithDir(dir), modelfetch.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFetchWithDigest(t *testing.T) {
	model := random(200_000)
	put(t, "iris/model.onnx", model)
	dir := t.TempDir()
	before := objectGets.Load()
	p, err := cache(t, dir).Fetch(context.Background(), "s3://models-a/iris/model.onnx", sum(model))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "sha256", sum(model), "model.onnx"); p != want {
		t.Errorf("path %s, want %s", p, want)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, model) {
		t.Error("the fetched model is not the object")
	}
	// Verified content in the cache needs no S3 request at all.
	if _, err := cache(t, dir).Fetch(context.Background(), "s3://models-a/iris/model.onnx", sum(model)); err != nil {
		t.Fatal(err)
	}
	if n := objectGets.Load() - before; n != 1 {
		t.Errorf("the object was fetched %d times, want once", n)
	}
}

// TestFetchWithoutDigest: the entry is keyed by bucket, key, ETag and
// size, so a changed object is fetched again.
func TestFetchWithoutDigest(t *testing.T) {
	dir := t.TempDir()
	v1 := random(50_000)
	put(t, "unpinned.onnx", v1)
	p1, err := cache(t, dir).Fetch(context.Background(), "s3://models-a/unpinned.onnx", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p1); !bytes.Equal(got, v1) || !strings.Contains(p1, string(filepath.Separator)+"s3"+string(filepath.Separator)) {
		t.Errorf("%s: want the object under the cache's s3/ entries", p1)
	}
	p1b, err := cache(t, dir).Fetch(context.Background(), "s3://models-a/unpinned.onnx", "")
	if err != nil || p1b != p1 {
		t.Errorf("the same object again: %s, %v; want %s", p1b, err, p1)
	}
	v2 := random(50_001)
	put(t, "unpinned.onnx", v2)
	p2, err := cache(t, dir).Fetch(context.Background(), "s3://models-a/unpinned.onnx", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p2); p2 == p1 || !bytes.Equal(got, v2) {
		t.Error("a changed object was not fetched again")
	}
}

func TestFetchWrongDigest(t *testing.T) {
	model := random(10_000)
	put(t, "wrong.onnx", model)
	dir := t.TempDir()
	want := sum([]byte("other"))
	_, err := cache(t, dir).Fetch(context.Background(), "s3://models-a/wrong.onnx", want)
	var de *modelfetch.DigestError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "s3://models-a/wrong.onnx") || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want a DigestError naming the reference and %s", err, want)
	}
	if _, ok := cache(t, dir).Complete("sha256/" + want); ok {
		t.Error("the cache trusts the wrong file")
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("staging left: %v", left)
	}
}

func TestMissingObject(t *testing.T) {
	_, err := cache(t, t.TempDir()).Fetch(context.Background(), "s3://models-a/nope.onnx", "")
	if err == nil || !strings.Contains(err.Error(), "s3://models-a/nope.onnx") {
		t.Errorf("err = %v, want an error naming the reference", err)
	}
}
