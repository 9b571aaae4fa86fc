package onnx_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports holds the package to what its doc says it may import beyond
// the standard library: the SDK and ONNX Runtime's binding, never the
// engine or the carriers that a function imports beside it.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/cortexfn/cortex/functions":     true,
		"github.com/cortexfn/cortex/functions/oip": true,
		"github.com/yalue/onnxruntime_go":          true,
	}
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && !allowed[imp] {
			t.Errorf("runtime/onnx imports %s: beyond the standard library it may import only functions, functions/oip and onnxruntime_go", imp)
		}
	}
}
