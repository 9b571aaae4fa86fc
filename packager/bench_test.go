package packager_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/oci"
)

// BenchmarkPackageIris packages the iris sample: cold (an empty cortex
// cache: the binary is linked again and every layer compressed; Go's own
// build cache stays warm) and warm (nothing changed since the last run).
// It reports the image and zip sizes beside the time.
func BenchmarkPackageIris(b *testing.B) {
	for _, bc := range []struct {
		name string
		cold bool
	}{{"cold", true}, {"warm", false}} {
		b.Run(bc.name, func(b *testing.B) {
			var r *packager.Result
			pkgOnce := func(cache string) {
				var err error
				r, err = packager.Package(context.Background(), iris, packager.Options{Out: filepath.Join(b.TempDir(), "dist"), BuildOptions: packager.BuildOptions{CacheDir: cache}})
				if err != nil {
					b.Fatal(err)
				}
			}
			if !bc.cold {
				pkgOnce("") // fill the default cache
			}
			b.ResetTimer()
			for b.Loop() {
				cache := ""
				if bc.cold {
					cache = b.TempDir()
				}
				pkgOnce(cache)
			}
			b.ReportMetric(float64(r.Image.Size)/1e6, "image-MB")
			b.ReportMetric(float64(r.Image.TarballSize)/1e6, "tarball-MB")
			b.ReportMetric(float64(r.Lambda.Size)/1e6, "zip-MB")
			b.ReportMetric(float64(r.Lambda.Unzipped)/1e6, "unzipped-MB")
		})
	}
}

// BenchmarkModelLayer builds the model layer of a synthetic fp32 model
// ($CORTEX_BENCH_MODEL_MB, default 1024 MB: normally distributed weights,
// which compress about as little as real ones) with gzip and zstd, and
// reports throughput and peak memory. "cached" is a rebuild of an
// unchanged model: hashed, not compressed again. It is a benchmark only:
// `go test` without -bench never runs it.
func BenchmarkModelLayer(b *testing.B) {
	mb := 1024
	if v := os.Getenv("CORTEX_BENCH_MODEL_MB"); v != "" {
		mb, _ = strconv.Atoi(v)
	}
	model := syntheticModel(b, mb)
	size := float64(int64(mb) << 20)
	for _, comp := range []oci.Compression{oci.Gzip, oci.Zstd} {
		for _, cached := range []bool{false, true} {
			name := string(comp)
			if cached {
				name += "/cached"
			}
			b.Run(name, func(b *testing.B) {
				cache := b.TempDir()
				c := oci.Contents{Layers: []oci.Layer{{Name: "model", Level: oci.Fast, Files: []artifact.File{{Path: "app/model/model.bin", Src: model}}}}}
				if cached {
					img, err := oci.Build(context.Background(), c, oci.Options{Compression: comp, CacheDir: cache})
					if err != nil {
						b.Fatal(err)
					}
					img.Close()
				}
				peak := testutil.WatchMemory()
				var layerSize int64
				b.ResetTimer()
				start := time.Now()
				for b.Loop() {
					img, err := oci.Build(context.Background(), c, oci.Options{Compression: comp, CacheDir: cache, NoCache: !cached})
					if err != nil {
						b.Fatal(err)
					}
					layerSize = img.Layers[len(img.Layers)-1].Size
					img.Close()
				}
				elapsed := time.Since(start)
				heap, rss := peak()
				b.ReportMetric(size/1e6/(elapsed.Seconds()/float64(b.N)), "MB/s")
				b.ReportMetric(float64(heap)/1e6, "peak-heap-MB")
				b.ReportMetric(float64(rss)/1e6, "peak-RSS-MB")
				b.ReportMetric(size/float64(layerSize), "ratio")
			})
		}
	}
}

// syntheticModel writes mb MB of float32 weights, N(0, 0.02), once per
// size into the test cache directory's sibling temp dir.
func syntheticModel(b *testing.B, mb int) string {
	b.Helper()
	p := filepath.Join(os.TempDir(), "cortex-bench-model-"+strconv.Itoa(mb)+"MB.bin")
	if st, err := os.Stat(p); err == nil && st.Size() == int64(mb)<<20 {
		return p
	}
	f, err := os.Create(p + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	var buf [4]byte
	for i := 0; i < mb<<18; i++ {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(float32(rng.NormFloat64()*0.02)))
		w.Write(buf[:])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := os.Rename(p+".tmp", p); err != nil {
		b.Fatal(err)
	}
	return p
}
