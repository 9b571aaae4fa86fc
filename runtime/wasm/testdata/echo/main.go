// Command echo is the trivial stage guest of the tests and benchmarks:
// preprocess returns its input, postprocess upper-cases valid UTF-8 and
// refuses anything else with a 400.
package main

import (
	"bytes"
	"unicode/utf8"

	"github.com/cortexfn/cortex/functions/wasmguest"
)

func init() {
	wasmguest.Preprocess(func(in []byte) ([]byte, error) { return in, nil })
	wasmguest.Postprocess(func(in []byte) ([]byte, error) {
		if !utf8.Valid(in) {
			return nil, wasmguest.Errorf(400, "input is not valid UTF-8")
		}
		return bytes.ToUpper(in), nil
	})
}

func main() {}
