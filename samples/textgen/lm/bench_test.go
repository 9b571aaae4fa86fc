package lm_test

import (
	"context"
	"testing"
	"time"

	"github.com/cortexfn/cortex/samples/textgen/lm"
)

// BenchmarkGenerate is the model alone, ONNX Runtime in a loop with no
// HTTP: one greedy generation of 32 tokens per iteration. It reports the
// first step (the prompt through the model and the first token: the
// model's own time to first token) and the tokens per second of the steps
// after it (one token each, with the KV cache), the figures a serving path
// is measured against.
//
//	go test -run '^$' -bench Generate -benchtime 10x ./samples/textgen/lm
func BenchmarkGenerate(b *testing.B) {
	m := model(b)
	ctx := context.Background()
	opts := lm.Options{MaxTokens: 32}
	var first, per time.Duration
	var tokens int
	for b.Loop() {
		res, err := m.Generate(ctx, prompt, opts, func(string) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		first += res.FirstStep
		per += res.PerStep * time.Duration(res.Tokens-1)
		tokens += res.Tokens - 1
	}
	b.ReportMetric(float64(first.Microseconds())/1e3/float64(b.N), "first-step-ms")
	if per > 0 {
		b.ReportMetric(float64(tokens)/per.Seconds(), "tokens/s")
	}
}
