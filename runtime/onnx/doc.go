// Package onnx is the built-in predictor for `predictor.type: onnx`: it
// serves an ONNX model through ONNX Runtime (github.com/yalue/onnxruntime_go,
// cgo), with no Go code from the function's author.
//
// Requests and responses are Open Inference Protocol v2 JSON (package
// functions/oip), on the function's own route and on the OIP route; the
// HTTP adapter turns KServe V1 requests into the same thing with the
// metadata the predictor reports (oip.MetadataProvider).
//
// The ONNX Runtime shared library (libonnxruntime.so.1 from the npm package
// onnxruntime-node, see Version) is loaded at Init, once per process, from
// the first of LibraryCandidates that exists. `cortex setup`
// (or `make setup` in a cortex checkout) puts it in the cache; a packaged function
// ships it in lib/ beside its binary.
//
// One session serves all requests: ONNX Runtime allows concurrent Run calls
// on a session. The model's inputs and outputs are read from the .onnx file
// (a few kilobytes, whatever the model's size) rather than from a second
// session. predictor.config may set intra_op_threads (default GOMAXPROCS,
// which follows the container's CPU limit) and max_elements.
//
// This package uses cgo. Only functions that serve ONNX models import it,
// so a pure-Go function still builds with CGO_ENABLED=0.
package onnx
