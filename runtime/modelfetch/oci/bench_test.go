package oci_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cortexfn/cortex/runtime/modelfetch"
)

// BenchmarkFetch fetches a 256 MiB model (random bytes, so incompressible,
// in an uncompressed layer as large weights usually are) from the
// in-process registry into an empty cache: the whole start's fetch
// (manifest, layer, digest check, unpacking, fsync, marker). In the same
// iteration it fetches the same blob with one GET and a plain io.Copy
// into a file, the baseline, and times that file's fsync apart: it
// reports both rates, fetch/copy (the ratio BENCHMARKS.md holds to at
// least 0.8) and fetch/(copy+fsync) (what the disk leaves of it).
//
//	go test ./runtime/modelfetch/oci -run '^$' -bench Fetch -benchtime 5x -count 2
func BenchmarkFetch(b *testing.B) {
	const size = 256 << 20
	model := make([]byte, size)
	rand.Read(model)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "models/model.onnx", Typeflag: tar.TypeReg, Mode: 0o644, Size: size})
	tw.Write(model)
	tw.Close()
	layer := static.NewLayer(tb.Bytes(), types.OCIUncompressedLayer)
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer})
	if err != nil {
		b.Fatal(err)
	}
	r := newRegistry(b)
	tag, _ := push(b, r, "models/big:1", img)
	ld, _ := layer.Digest()
	blobURL := r.URL + "/v2/models/big/blobs/" + ld.String()

	for _, mode := range []struct {
		name string
		opts []modelfetch.Option
	}{
		// The default: one request, unpacked and hashed as it arrives;
		// parallel ranges only if it is slow (on loopback it is not).
		{"default", nil},
		// Ranges off: what a layer below 64 MiB gets.
		{"stream", []modelfetch.Option{modelfetch.WithRanges(0, 0, 0)}},
		// The slow path forced: cut into 8 ranges at the first read, the
		// tails through the spool file, hashed in order as they land.
		{"split", []modelfetch.Option{modelfetch.WithRangesWhenSlow(1<<62, 0)}},
		// Ranges from the first request (WithRanges; the default before):
		// 8 parallel ranges of 32 MiB, the file's bytes straight into
		// place, hashed in a second pass.
		{"ranges", []modelfetch.Option{modelfetch.WithRanges(modelfetch.DefaultRangesMin, modelfetch.DefaultMinPart, modelfetch.DefaultMaxParts)}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			var fetch, copy, sync time.Duration
			b.SetBytes(size)
			for b.Loop() {
				dir := b.TempDir()
				start := time.Now()
				resp, err := http.Get(blobURL)
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.Create(filepath.Join(dir, "blob"))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(f, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				copy += time.Since(start)
				start = time.Now()
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				sync += time.Since(start)
				f.Close()
				os.Remove(f.Name())

				start = time.Now()
				c, err := modelfetch.New(append([]modelfetch.Option{modelfetch.WithDir(filepath.Join(dir, "cache")),
					modelfetch.WithLogger(slog.New(slog.DiscardHandler))}, mode.opts...)...)
				if err != nil {
					b.Fatal(err)
				}
				p, err := c.Fetch(context.Background(), tag, "")
				if err != nil {
					b.Fatal(err)
				}
				fetch += time.Since(start)
				if !strings.HasSuffix(p, "model.onnx") {
					b.Fatalf("fetched %s", p)
				}
				os.RemoveAll(filepath.Join(dir, "cache"))
			}
			n := float64(b.N) * size / 1e6
			b.ReportMetric(n/fetch.Seconds(), "fetch-MB/s")
			b.ReportMetric(n/copy.Seconds(), "copy-MB/s")
			b.ReportMetric(copy.Seconds()/fetch.Seconds(), "fetch/copy")
			b.ReportMetric((copy+sync).Seconds()/fetch.Seconds(), "fetch/copy+fsync")
		})
	}
}
