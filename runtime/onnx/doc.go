// Package onnx runs ONNX models through ONNX Runtime
// (github.com/yalue/onnxruntime_go, cgo). It owns three ways to do so:
//
//   - Predictor, the built-in predictor of `predictor.type: onnx` with
//     predictor.model: one model, one session, no Go code from the
//     function's author (predictor.go; PredictBatch in batch.go).
//   - Repository, the built-in predictor with predictor.models or
//     predictor.models_dir: several models by name and version, each
//     version a Predictor of its own. Its parts have a file each: the
//     options (repository_options.go), reading the model files and the
//     order of versions (repository_scan.go), the reference-counted LRU
//     cache of loaded versions (repository_cache.go), hot reload by polling
//     (repository_watch.go), and which version serves a request
//     (repository_route.go).
//   - Open and Session, for a `type: go` predictor that runs one or more
//     models itself (session.go; samples/ocr).
//
// Predictor and Repository take and answer Open Inference Protocol v2 JSON
// (package functions/oip), on the function's own route and on the OIP
// route alike. Both implement oip.Catalog: they say which models they
// serve and describe each one from the .onnx file. The runtime, not this
// package, checks the model each request names against that list and
// turns KServe V1 requests into OIP ones with the described inputs. Called
// directly, without the runtime, they still refuse a model they do not
// serve with the same 404 (oip.ModelNotFound).
//
// The ONNX Runtime shared library (libonnxruntime.so.1 from the npm package
// onnxruntime-node, see Version) is loaded once per process, by the first
// Init or Open, from the first of LibraryCandidates that exists
// (library.go). `cortex
// setup` (or `make setup` in a cortex checkout) puts it in the cache; a
// packaged function ships it in lib/ beside its binary. A model's inputs
// and outputs are read from the .onnx file itself (model.go: a few
// kilobytes, whatever the model's size), not from a second session;
// tensor.go moves OIP tensors in and out of ONNX Runtime values.
//
// Models over protobuf's 2 GB limit keep their weights in external data
// files beside the .onnx file (TensorProto.data_location EXTERNAL, a
// location relative to the model's directory). Every session is created
// from the model's path, never from bytes in memory, so ONNX Runtime finds
// those files beside it; a Repository also takes up a changed data file
// under an unchanged graph (repository_scan.go).
//
// One session serves all requests to a model: ONNX Runtime allows
// concurrent Run calls on a session. predictor.config may set
// intra_op_threads (default GOMAXPROCS, which follows the container's CPU
// limit) and max_elements.
//
// What it must not import: the engine and the carriers (runtime,
// adapters; a function imports them beside this package, and the engine
// never depends on its predictor), the tool side (packager, cmd),
// Kubernetes or the AWS SDK. Beyond the standard library it needs only
// functions, functions/oip and onnxruntime_go (TestImports holds it to
// that). Nor may runtime or adapters import it: it is cgo, so only the
// functions that serve ONNX models import it and a pure-Go function still
// builds with CGO_ENABLED=0 (internal/depcheck holds that rule).
package onnx
