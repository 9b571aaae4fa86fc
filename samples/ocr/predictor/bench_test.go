package predictor_test

import (
	"context"
	"testing"
	"time"

	"github.com/cortexfn/cortex/samples/ocr/predictor"
	"github.com/cortexfn/cortex/samples/ocr/raster"
	"github.com/cortexfn/cortex/samples/ocr/testpage"
)

// BenchmarkRead is one OCR request in-process, without the runtime (the
// floor a served request adds to): the receipt page, pre-processing in Go
// (not WebAssembly), then the predictor. It reports the milliseconds per
// request spent in each part. go run ./internal/bench/ocr measures the
// same beside `cortex serve`.
func BenchmarkRead(b *testing.B) {
	o := newOCR(b)
	p := testpage.Pages[0]
	img := p.PNG()
	var pre time.Duration
	var sum predictor.Timings
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
		if t.Lines != len(p.Lines) {
			b.Fatalf("read %d lines, want %d", t.Lines, len(p.Lines))
		}
		sum.DetectInput += t.DetectInput
		sum.Detect += t.Detect
		sum.Boxes += t.Boxes
		sum.Crop += t.Crop
		sum.Recognise += t.Recognise
		sum.Decode += t.Decode
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(pre+sum.DetectInput+sum.Crop), "pre-ms/op")
	b.ReportMetric(ms(sum.Detect), "detect-ms/op")
	b.ReportMetric(ms(sum.Recognise), "recognise-ms/op")
	b.ReportMetric(ms(sum.Boxes+sum.Decode), "post-ms/op")
}
