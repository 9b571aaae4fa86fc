package build

import (
	"bytes"
	"go/format"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager/spec"
)

// TestMainFetchers checks that the generated main imports a model fetcher
// exactly when the spec names a model of its scheme: a function without
// oci:// or s3:// models links neither go-containerregistry nor the AWS
// SDK.
func TestMainFetchers(t *testing.T) {
	const oci, s3 = `_ "github.com/cortexfn/cortex/runtime/modelfetch/oci"`, `_ "github.com/cortexfn/cortex/runtime/modelfetch/s3"`
	tests := []struct {
		name      string
		pred      spec.Predictor
		want, not []string
	}{
		{"path", spec.Predictor{Type: spec.TypeONNX, Model: "model/iris.onnx"}, nil, []string{oci, s3, "modelfetch"}},
		{"https", spec.Predictor{Type: spec.TypeONNX, Model: "https://example.com/iris.onnx"}, nil, []string{oci, s3}},
		{"oci", spec.Predictor{Type: spec.TypeONNX, Model: "oci://registry.example.com/org/iris:1"}, []string{oci}, []string{s3}},
		{"s3 go", spec.Predictor{Type: spec.TypeGo, Model: "s3://models-a/m.bin"}, []string{s3}, []string{oci}},
		{"models", spec.Predictor{Type: spec.TypeONNX, Models: []spec.Model{{Name: "a", Path: "oci://registry.example.com/org/a:1"}, {Name: "b", Path: "s3://models-a/b.onnx"}, {Name: "c", Path: "m/c"}}},
			[]string{oci, s3, `onnx.WithModel("a", runtime.ModelPath("oci://registry.example.com/org/a:1")),`, `onnx.WithModel("c", "m/c"),`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			p := &plan{Type: tt.pred.Type, Import: "example.com/fn/predictor", Repository: repositoryOptions(tt.pred), Fetchers: fetchers(tt.pred)}
			if err := mainTemplate.Execute(&b, p); err != nil {
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
			for _, n := range tt.not {
				if strings.Contains(src, n) {
					t.Errorf("generated main has %s:\n%s", n, src)
				}
			}
		})
	}
}
