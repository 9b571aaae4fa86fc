package build

import (
	"bytes"
	"go/format"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/spec"
)

// TestMainRepository checks the generated main of a multi-model onnx
// function: the spec's choices become onnx.NewRepository options, quoted
// so that no name or path can break out of its string.
func TestMainRepository(t *testing.T) {
	tests := []struct {
		name string
		pred spec.Predictor
		want []string
	}{
		{"single model", spec.Predictor{Type: spec.TypeONNX, Model: "model/iris.onnx"},
			[]string{"onnx.New()"}},
		{"models dir", spec.Predictor{Type: spec.TypeONNX, ModelsDir: "models", CacheSize: 2, PollInterval: 2 * time.Second},
			[]string{`onnx.NewRepository(`, `onnx.WithModelsDir("models"),`, `onnx.WithCacheSize(2),`, `onnx.WithPollInterval(2000000000) /* 2s */,`}},
		{"models list", spec.Predictor{Type: spec.TypeONNX, Models: []spec.Model{{Name: "a", Path: `m/a".onnx`}, {Name: "b", Path: "m/b"}}, DefaultModel: "b"},
			[]string{`onnx.WithModel("a", "m/a\".onnx"),`, `onnx.WithModel("b", "m/b"),`, `onnx.WithDefaultModel("b"),`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := mainTemplate.Execute(&b, &plan{Type: spec.TypeONNX, Repository: repositoryOptions(tt.pred)}); err != nil {
				t.Fatal(err)
			}
			src := b.String()
			if _, err := format.Source(b.Bytes()); err != nil {
				t.Fatalf("the generated main does not parse: %v\n%s", err, src)
			}
			for _, w := range tt.want {
				if !strings.Contains(src, w) {
					t.Errorf("generated main lacks %s:\n%s", w, src)
				}
			}
		})
	}
}
