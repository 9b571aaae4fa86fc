// Package runtime is the engine inside one function process, between the
// carriers (adapters/http, adapters/lambda, adapters/knative) and the
// predictor.
//
// Main is what a function's generated main calls: it reads the function's
// Config ($CORTEX_CONFIG, else cortex.json beside the executable, else under
// $LAMBDA_TASK_ROOT) and serves the predictor on the carrier the
// environment names (the Lambda runtime loop when $AWS_LAMBDA_RUNTIME_API is
// set, else HTTP on $PORT, which also takes CloudEvents).
//
// Runtime.Invoke is where everything that must behave the same on every
// carrier lives: the request id, the body limit (413), the model check and
// the KServe V1 conversion (models.go: the function's one model catalogue,
// from the predictor's oip.Catalog, which the carriers ask through
// adapters.Catalog), the bound on concurrent predictions and the
// bounded queue behind it (503 with Retry-After), the per-request deadline
// (504), panic recovery (500, the process keeps serving), the optional
// WebAssembly pre and post stages, server-side batching, and the Prometheus
// metrics. Runtime.Start runs the predictor's Init before the function
// reports ready, and every model route answers 503 with Retry-After until
// it has; Runtime.Shutdown drains in-flight requests and then closes the
// predictor. The HTTP handler counts every answer it sends, its carriers'
// own refusals (413, 405, 404, 400) too.
//
// A prediction that runs past its deadline keeps running: Go cannot stop a
// goroutine. The runtime counts it (cortex_overrunning_predictions), and
// when it has overrun by limits.overrun_grace the process must be
// replaced: /healthz and /readyz answer 503, new requests 503 with
// Retry-After, the other predictions drain, and Main exits with
// ExitReplace (75) so that the supervisor starts a fresh process.
//
// The package never imports the packager, Kubernetes or AWS SDK code, so a
// function binary stays small; runtime/onnx (cgo) is imported only by the
// functions that use it. See ARCHITECTURE.md for the whole map.
package runtime
