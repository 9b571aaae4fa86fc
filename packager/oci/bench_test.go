package oci_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/oci"
)

// BenchmarkModelLayer1GiB writes the model layer of a 1 GiB model
// ($CORTEX_BENCH_MODEL_MB changes the size) and reports MB/s, the peak Go
// heap and the process's peak RSS, against a baseline in the same run:
// reading the same file once with io.Copy into sha256, the least any
// layer writer must do. The model is float32 weights drawn from
// N(0, 0.02), which compress about as little as real ones; it is written
// into the benchmark's temporary directory (and so read from the page
// cache, as the baseline reads it). Each run starts with the page cache
// written back (flushDisk, untimed): a run measures the layer until its
// bytes are in the page cache, as baseline-copy does a copy; the kernel
// writes them to disk after. A machine whose dirty pages are over the
// kernel's threshold (vm.dirty_ratio) holds every writer, the layer and
// baseline-copy alike, to its disk's write rate.
//
//	baseline       io.Copy(sha256, model)
//	baseline-copy  io.Copy(file + sha256, model): the same read and one
//	               write to disk, which a layer needs as well (x-copy)
//	gzip           the model layer, gzip (the default; the path Build
//	               takes), not cached: x-copy is its ratio to baseline-copy
//	zstd           the same with zstd
//	none           the same uncompressed (a media type Build does not
//	               offer, as Lambda refuses it), for comparison
//	cached         the layer again, with the layer cache of a first build:
//	               what a code-only change costs (the model is not read)
//
// Run it with
//
//	go test -run '^$' -bench ModelLayer1GiB -benchtime 3x ./packager/oci/
func BenchmarkModelLayer1GiB(b *testing.B) {
	mb := 1024
	if v := os.Getenv("CORTEX_BENCH_MODEL_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil || mb <= 0 {
			b.Fatalf("CORTEX_BENCH_MODEL_MB=%q: want a number of MB", v)
		}
	}
	dir := b.TempDir()
	model := filepath.Join(dir, "model.bin")
	writeWeights(b, model, int64(mb)<<20)
	size := float64(int64(mb) << 20)
	layer := func(comp oci.Compression, cache string, noCache bool) oci.LayerInfo {
		c := oci.Contents{Layers: []oci.Layer{{Name: "model", Level: oci.Fast, Files: []artifact.File{{Path: "app/model/model.bin", Src: model}}}}}
		img, err := oci.Build(context.Background(), c, oci.Options{Compression: comp, CacheDir: cache, NoCache: noCache})
		if err != nil {
			b.Fatal(err)
		}
		defer img.Close()
		return img.Layers[len(img.Layers)-1]
	}
	var baseline, copyBaseline float64 // MB/s, set by the baselines
	measure := func(b *testing.B, fn func()) {
		peak := testutil.WatchMemory()
		var took time.Duration
		for b.Loop() {
			// Each run starts with nothing of the last waiting to be
			// written to disk (the timer stopped): once the dirty pages
			// pass the kernel's threshold, every writer here is held to
			// the disk's write rate, whatever it does.
			b.StopTimer()
			flushDisk()
			b.StartTimer()
			start := time.Now()
			fn()
			took += time.Since(start)
		}
		rate := size / 1e6 / (took.Seconds() / float64(b.N))
		heap, rss := peak()
		b.ReportMetric(rate, "MB/s")
		b.ReportMetric(float64(heap)/1e6, "peak-heap-MB")
		b.ReportMetric(float64(rss)/1e6, "peak-RSS-MB")
		switch _, sub, _ := strings.Cut(b.Name(), "/"); {
		case strings.HasPrefix(sub, "baseline-copy"):
			copyBaseline = rate
			if baseline > 0 {
				b.ReportMetric(rate/baseline, "x-baseline")
			}
		case strings.HasPrefix(sub, "baseline"):
			baseline = rate
		default:
			if baseline > 0 {
				b.ReportMetric(rate/baseline, "x-baseline")
			}
			if copyBaseline > 0 {
				b.ReportMetric(rate/copyBaseline, "x-copy")
			}
		}
	}
	b.Run("baseline", func(b *testing.B) {
		measure(b, func() {
			f, err := os.Open(model)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if _, err := io.Copy(sha256.New(), f); err != nil {
				b.Fatal(err)
			}
		})
	})
	// A layer is written to disk (the layer cache) while it is hashed:
	// the same read and one write, hashed, is the floor of that.
	b.Run("baseline-copy", func(b *testing.B) {
		// Each copy is a new file, kept until the next is written, as a
		// layer's blob replaces the last: writing into pages just freed
		// is cheaper than into new ones on some machines (VMs).
		dir, prev, i := b.TempDir(), "", 0
		measure(b, func() {
			f, err := os.Open(model)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			i++
			out := filepath.Join(dir, "copy"+strconv.Itoa(i))
			w, err := os.Create(out)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.MultiWriter(w, sha256.New()), f); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			if prev != "" {
				os.Remove(prev)
			}
			prev = out
		})
	})
	for _, comp := range []oci.Compression{oci.Gzip, oci.Zstd, oci.Uncompressed} {
		b.Run(string(comp), func(b *testing.B) {
			// Each build is into a new layer cache, the last one removed
			// once it is written, as baseline-copy's copies are: a first
			// package writes a new blob (renaming a file over the blob
			// of the last build, as a --no-cache build does, makes ext4
			// start writing it back at once: auto_da_alloc).
			dir, prev, i := b.TempDir(), "", 0
			var l oci.LayerInfo
			measure(b, func() {
				i++
				cache := filepath.Join(dir, strconv.Itoa(i))
				l = layer(comp, cache, true)
				if prev != "" {
					os.RemoveAll(prev)
				}
				prev = cache
			})
			if l.Read < int64(size) {
				b.Fatalf("the layer read %d bytes of a %d-byte model", l.Read, int64(size))
			}
			b.ReportMetric(size/float64(l.Size), "ratio")
		})
	}
	b.Run("cached", func(b *testing.B) {
		cache := b.TempDir()
		layer(oci.Gzip, cache, false)
		var l oci.LayerInfo
		measure(b, func() { l = layer(oci.Gzip, cache, false) })
		if !l.Cached || l.Read != 0 {
			b.Fatalf("the second build of an unchanged model: cached %t, read %d bytes; want cached, 0", l.Cached, l.Read)
		}
	})
}

// writeWeights writes size bytes of float32 weights, N(0, 0.02), to p.
func writeWeights(tb testing.TB, p string, size int64) {
	tb.Helper()
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	var buf [4]byte
	for i := int64(0); i < size/4; i++ {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(float32(rng.NormFloat64()*0.02)))
		w.Write(buf[:])
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
}
