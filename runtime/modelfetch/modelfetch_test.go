package modelfetch_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"

	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime/modelfetch"
)

// blobServer serves one blob over TLS with range support
// (http.ServeContent), counting the requests for it.
type blobServer struct {
	*httptest.Server
	blob   []byte
	gets   atomic.Int64 // requests for the blob
	ranges atomic.Int64 // of them, requests for a part (not bytes=0-)
}

func newBlobServer(t *testing.T, blob []byte) *blobServer {
	t.Helper()
	s := &blobServer{blob: blob}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.gets.Add(1)
		if rg := r.Header.Get("Range"); rg != "" && rg != "bytes=0-" {
			s.ranges.Add(1)
		}
		http.ServeContent(w, r, "model.onnx", time.Time{}, bytes.NewReader(s.blob))
	}))
	t.Cleanup(s.Close)
	return s
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newCache opens the cache in dir, trusting the test server's
// certificate through the client (a process would through SSL_CERT_FILE).
func newCache(t *testing.T, dir string, s *blobServer, opts ...modelfetch.Option) *modelfetch.Cache {
	t.Helper()
	c, err := modelfetch.New(append([]modelfetch.Option{modelfetch.WithDir(dir), modelfetch.WithHTTPClient(s.Client()),
		modelfetch.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFetchHTTPS(t *testing.T) {
	blob := random(t, 100_000)
	s := newBlobServer(t, blob)
	dir := t.TempDir()
	ref := s.URL + "/models/iris.onnx"
	c := newCache(t, dir, s)
	p, err := c.Fetch(context.Background(), ref, sum(blob))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "sha256", sum(blob), "iris.onnx"); p != want {
		t.Errorf("path = %s, want %s", p, want)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, blob) {
		t.Error("the cached file is not the blob")
	}
	// Another process (another Cache on the same directory) finds it.
	p2, err := newCache(t, dir, s).Fetch(context.Background(), ref, strings.ToUpper(sum(blob)))
	if err != nil || p2 != p {
		t.Fatalf("second fetch: %s, %v", p2, err)
	}
	if n := s.gets.Load(); n != 1 {
		t.Errorf("the blob was fetched %d times, want once", n)
	}
}

// TestFetchWrongDigest: the server's file is not the one the spec's digest
// names. The fetch fails naming the reference and both digests, and the
// cache holds nothing trusted, nor any leftover.
func TestFetchWrongDigest(t *testing.T) {
	blob := random(t, 10_000)
	s := newBlobServer(t, blob)
	dir := t.TempDir()
	want := sum([]byte("another model"))
	ref := s.URL + "/iris.onnx"
	_, err := newCache(t, dir, s).Fetch(context.Background(), ref, want)
	var de *modelfetch.DigestError
	if !errors.As(err, &de) || de.Got != sum(blob) || de.Want != want {
		t.Fatalf("err = %v, want a DigestError with both digests", err)
	}
	for _, w := range []string{ref, want, sum(blob)} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not name %s: %v", w, err)
		}
	}
	assertNothingTrusted(t, dir)
}

// assertNothingTrusted checks that dir holds no entry and no staging
// leftovers: only the cache's own lock and tmp directories.
func assertNothingTrusted(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); !d.IsDir() && !strings.HasPrefix(rel, "locks"+string(filepath.Separator)) {
			t.Errorf("the cache holds %s after a failed fetch", rel)
		}
		return nil
	})
}

func TestFetchRanges(t *testing.T) {
	blob := random(t, 5<<20+123)
	s := newBlobServer(t, blob)
	c := newCache(t, t.TempDir(), s, modelfetch.WithRanges(1<<20, 1<<20, 4))
	p, err := c.Fetch(context.Background(), s.URL+"/big.onnx", sum(blob))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, blob) {
		t.Error("the ranges were not put together into the blob")
	}
	if n := s.ranges.Load(); n != 3 {
		t.Errorf("%d range requests, want 3 (4 parts, the first from the probe)", n)
	}
}

// TestFetchWithoutRanges: a server that ignores Range (200, whole body)
// is streamed in one request.
func TestFetchWithoutRanges(t *testing.T) {
	blob := random(t, 3<<20)
	var gets atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Write(blob)
	}))
	defer srv.Close()
	c, err := modelfetch.New(modelfetch.WithDir(t.TempDir()), modelfetch.WithHTTPClient(srv.Client()), modelfetch.WithRanges(1<<20, 1<<20, 4))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Fetch(context.Background(), srv.URL+"/m.onnx", sum(blob))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, blob) || gets.Load() != 1 {
		t.Errorf("content equal %v, %d requests; want the blob in 1", bytes.Equal(got, blob), gets.Load())
	}
}

// TestConcurrentFetchesFetchOnce starts many fetches of one model at
// once, each with its own Cache (its own lock file descriptor, as
// separate processes have): the server sends it once.
func TestConcurrentFetchesFetchOnce(t *testing.T) {
	blob := random(t, 2<<20)
	s := newBlobServer(t, blob)
	dir := t.TempDir()
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		c := newCache(t, dir, s)
		wg.Go(func() { paths[i], errs[i] = c.Fetch(context.Background(), s.URL+"/m.onnx", sum(blob)) })
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Errorf("fetch %d: %s, %v", i, paths[i], errs[i])
		}
	}
	if n := s.gets.Load(); n != 1 {
		t.Errorf("the blob was sent %d times, want once", n)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string // relative to the entry; "." for the entry itself
	}{
		{"one onnx", []string{"model.onnx"}, "model.onnx"},
		{"onnx with external data", []string{"model.onnx", "model.onnx.data"}, "model.onnx"},
		{"one other file", []string{"weights.bin"}, "weights.bin"},
		{"two onnx", []string{"a.onnx", "b.onnx"}, "."},
		{"versions", []string{"1/model.onnx", "2/model.onnx"}, "."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range append(tt.files, modelfetch.Marker) {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
				os.WriteFile(filepath.Join(dir, f), nil, 0o644)
			}
			got, err := modelfetch.Resolve(dir)
			if want := filepath.Join(dir, tt.want); err != nil || got != want {
				t.Errorf("Resolve = %s, %v; want %s", got, err, want)
			}
		})
	}
}

func TestFetchWithoutScheme(t *testing.T) {
	c, err := modelfetch.New(modelfetch.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Fetch(context.Background(), "oci://registry.example.com/org/iris:1", "")
	if err == nil || !strings.Contains(err.Error(), "built without oci:// support") {
		t.Errorf("err = %v, want one saying the binary lacks oci:// support", err)
	}
}

// The SIGKILL test: a child process (this test binary, run again) fetches
// from a server that stalls half-way through the body; the test kills it
// with SIGKILL mid-fetch. The next fetch must not trust anything the
// child left, fetch the model again and verify it.

const childEnv = "MODELFETCH_TEST_CHILD"

// TestChildFetch is the child's side; it does nothing in a normal run.
func TestChildFetch(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestKilledFetchLeavesNothingTrusted")
	}
	// The child trusts the server through SSL_CERT_FILE, as a function
	// process would: the default client.
	c, err := modelfetch.New(modelfetch.WithDir(os.Getenv("CORTEX_MODEL_CACHE")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Fetch(context.Background(), os.Getenv(childEnv), os.Getenv(childEnv+"_SHA256"))
	t.Fatalf("the fetch returned (%v); it should have been killed", err)
}

func TestKilledFetchLeavesNothingTrusted(t *testing.T) {
	blob := random(t, 4<<20)
	var stall atomic.Bool
	stall.Store(true)
	release := make(chan struct{})
	var gets atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if !stall.Load() {
			http.ServeContent(w, r, "m.onnx", time.Time{}, bytes.NewReader(blob))
			return
		}
		w.Header().Set("Content-Length", "4194304")
		w.Write(blob[:len(blob)/2])
		w.(http.Flusher).Flush()
		select { // stall until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	certFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ref := srv.URL + "/m.onnx"
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildFetch$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+ref, childEnv+"_SHA256="+sum(blob), "CORTEX_MODEL_CACHE="+dir, "SSL_CERT_FILE="+certFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until the child has written half the blob into its staging
	// directory, then kill it.
	for staged := int64(0); staged < int64(len(blob)/2); {
		time.Sleep(20 * time.Millisecond)
		staged = 0
		filepath.WalkDir(filepath.Join(dir, "tmp"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					staged += info.Size()
				}
			}
			return nil
		})
		select {
		case err := <-exited:
			t.Fatalf("the child exited before it was killed (%v):\n%s", err, out.String())
		default:
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-exited

	c, err := modelfetch.New(modelfetch.WithDir(dir), modelfetch.WithHTTPClient(srv.Client()), modelfetch.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	entry := "sha256/" + sum(blob)
	if _, ok := c.Complete(entry); ok {
		t.Fatal("the killed fetch left an entry the cache trusts")
	}
	// A directory at the entry's place without its marker (as a kill
	// between the rename and the marker leaves) is not used either.
	final := filepath.Join(dir, "sha256", sum(blob))
	os.MkdirAll(final, 0o755)
	os.WriteFile(filepath.Join(final, "m.onnx"), []byte("half a model"), 0o644)

	stall.Store(false)
	before := gets.Load()
	p, err := c.Fetch(context.Background(), ref, sum(blob))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, blob) {
		t.Error("the fetch after the kill used what the killed one left")
	}
	if gets.Load() == before {
		t.Error("the model was not fetched again after the kill")
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("the killed fetch's staging directory is still there: %v", left)
	}
}

func TestDefaultDir(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"explicit", map[string]string{"CORTEX_MODEL_CACHE": "/srv/models", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, "/srv/models"},
		{"lambda", map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "CORTEX_CACHE": "/var/cortex"}, "/tmp/cortex-models"},
		{"cortex cache", map[string]string{"CORTEX_CACHE": "/var/cortex", "XDG_CACHE_HOME": "/xdg"}, "/var/cortex/models"},
		{"xdg", map[string]string{"XDG_CACHE_HOME": "/xdg"}, "/xdg/cortex/models"},
		{"home", map[string]string{"HOME": "/home/ada"}, "/home/ada/.cache/cortex/models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"CORTEX_MODEL_CACHE", "AWS_LAMBDA_RUNTIME_API", "CORTEX_CACHE", "XDG_CACHE_HOME"} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if got, err := modelfetch.DefaultDir(); err != nil || got != tt.want {
				t.Errorf("DefaultDir() = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// TestProgressLogged: a fetch that takes a while logs its progress (bytes
// so far and the rate) while it runs.
func TestProgressLogged(t *testing.T) {
	blob := random(t, 1<<20)
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1048576")
		w.Write(blob[:1000])
		w.(http.Flusher).Flush()
		<-release
		w.Write(blob[1000:])
	}))
	defer srv.Close()
	var logs testutil.SyncBuffer
	c, err := modelfetch.New(modelfetch.WithDir(t.TempDir()), modelfetch.WithHTTPClient(srv.Client()),
		modelfetch.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))), modelfetch.WithProgressInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Fetch(context.Background(), srv.URL+"/m.onnx", sum(blob)); done <- err }()
	for !strings.Contains(logs.String(), `"msg":"fetching model","model":"`+srv.URL+`/m.onnx","bytes":1000,"total":1048576`) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"model blob fetched"`) || !strings.Contains(logs.String(), `"mb_per_s":`) {
		t.Errorf("no result line with the rate:\n%s", logs.String())
	}
}
