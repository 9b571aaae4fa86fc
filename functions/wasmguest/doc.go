// Package wasmguest lets a Go author write a Cortex WebAssembly stage as an
// ordinary function:
//
//	package main
//
//	import "github.com/cortexfn/cortex/functions/wasmguest"
//
//	func init() {
//		wasmguest.Preprocess(func(in []byte) ([]byte, error) {
//			if len(in) == 0 {
//				return nil, wasmguest.Errorf(400, "empty body")
//			}
//			return bytes.ToUpper(in), nil
//		})
//	}
//
//	func main() {} // never called: a stage is a reactor, not a command
//
// and builds it with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o pre.wasm .
//
// Register in init: a module built with -buildmode=c-shared runs its package
// initialisers (through the _initialize export the host calls once per
// instance) but never main.
//
// The package implements the host side's ABI v1 (runtime/wasm/ABI.md): it
// exports cortex_abi_v1, alloc, preprocess, postprocess and cortex_stages,
// and imports cortex.fail and cortex.log. An author never sees the ABI.
//
// Errors: return an error made with [Errorf] (or an *[Error]) to fail with a
// status and a message the caller sees. Any other error, and a panic, is a
// 500 whose detail goes to the function's log, not to the caller.
//
// The input slice is only valid during the call; the returned slice is kept
// alive by this package until the next call, so it may alias the input or
// any memory the stage owns.
//
// A stage runs in a sandbox: no files, network, environment, real clock or
// randomness unless cortex.yaml grants them.
//
// This package only builds for GOOS=wasip1 and imports only the standard
// library (not package functions, whose net/http dependency would weigh on
// every guest).
package wasmguest
