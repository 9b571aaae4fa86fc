//go:build race

package packager_test

// raceEnabled: the race detector is on. The tests then package a small
// stand-in for ONNX Runtime (see pkg); the full-size images run without it.
//
// What the race run is for: the packager's concurrent code. Each path is
// driven by at least one test built with -race:
//
//   - layers built at once (oci's buildLayers: a goroutine per layer into
//     the shared layer cache, which each of them writes its entries and
//     stat-cache records into): every test that packages;
//     TestExternalDataPackaged builds two model layers (model, model-data)
//     at once beside the code layers, then again from the stat cache.
//   - the single pass of a model layer, whose tar, file and blob hashes
//     each run in a goroutine of their own (oci's asyncWriter), the file
//     digests handed on to the stat cache and the SBOM:
//     TestExternalDataPackaged, TestPushModel, TestHardLinkInsideShipped.
//   - the Lambda zip's deflate cache (lambdazip): TestLambdaZipContents,
//     TestOutputsLambdaOnly, the hard-link tests.
//   - push (go-containerregistry uploads blobs concurrently), and a second
//     push that uploads nothing: TestPush; the model image built and pushed
//     by --push-model: TestPushModel, and fetched back through
//     runtime/modelfetch: TestPushModelThenFetch.
//   - signing and the SBOM attached in the registry: TestSupplyChain.
//   - build's SDK digest (a sync.OnceValues): every test that packages.
//
// Several architectures are built one after the other (Package's loop),
// each through the paths above: the multi-architecture tests need the
// arm64 cross tools and qemu, and run without -race (arm64_test.go).
// The tests that only vary inputs or options of the same pipeline, and
// would compress a function binary again under the race detector
// (minutes of instrumented single-goroutine code, where it finds
// nothing), are built only without -race: fullsize_test.go,
// sbomdigest_test.go, e2e_test.go, lambdaimage_test.go. make test runs
// those in test-fullsize, so every test runs in CI once.
const raceEnabled = true
