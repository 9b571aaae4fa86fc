package predictor_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cortexfn/cortex/samples/ocr/predictor"
	"github.com/cortexfn/cortex/samples/ocr/raster"
)

// BenchmarkRead is one OCR request in-process, without the runtime (the
// floor a served request adds to): the receipt page, pre-processing in Go
// (not WebAssembly), then the predictor. It reports the milliseconds per
// request spent in each part.
func BenchmarkRead(b *testing.B) {
	o := newOCR(b)
	p := pages[0]
	img := encodePNG(b, render(p.w, p.h, p.lines))
	var pre, det, boxes, rec time.Duration
	for b.Loop() {
		start := time.Now()
		f, err := raster.Prepare(img, raster.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		pre += time.Since(start)
		var t predictor.Timings
		if _, err := o.Read(context.Background(), f, &t); err != nil {
			b.Fatal(err)
		}
		if t.Lines != len(p.lines) {
			b.Fatalf("read %d lines, want %d", t.Lines, len(p.lines))
		}
		det, boxes, rec = det+t.Detect, boxes+t.Boxes, rec+t.Recognise
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(pre), "pre-ms/op")
	b.ReportMetric(ms(det), "detect-ms/op")
	b.ReportMetric(ms(boxes), "boxes-ms/op")
	b.ReportMetric(ms(rec), "recognise-ms/op")
}

// BenchmarkServed is the same request through the runtime over HTTP, with
// the pre stage in WebAssembly: what `cortex serve` adds to the floor.
func BenchmarkServed(b *testing.B) {
	base := serve(b)
	p := pages[0]
	img := encodePNG(b, render(p.w, p.h, p.lines))
	for b.Loop() {
		resp, err := http.Post(base+"/predict", "image/png", bytes.NewReader(img))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
