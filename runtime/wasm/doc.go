// Package wasm runs a function's WebAssembly pre- and post-processing
// stages in a wazero sandbox: bytes in, bytes out, in any language that
// meets the ABI in ABI.md (Go with functions/wasmguest, TinyGo, Rust, Zig).
//
//	m, err := wasm.New(ctx, "pre.wasm", wasm.Options{Instances: 8})
//	...
//	in, err = m.Preprocess(ctx, req.Body)   // a *functions.Error on failure
//
// # Compile once, instantiate at start, never per call
//
// New compiles the module once per process through a shared wazero
// compilation cache (on disk under Options.CacheDir, so a restart or a
// packaged function does not compile again), checks it meets ABI v1 and
// instantiates Options.Instances instances, running each one's _initialize
// and giving each its input buffer. A call takes an idle instance, writes
// the input into the instance's buffer, calls the stage, validates and
// copies out the result and puts the instance back. An instance never
// serves two calls at once.
//
// # Failures
//
// Every error is a *functions.Error; Err wraps one of the sentinels below,
// so errors.Is tells the causes apart:
//
//	guest called cortex.fail          guest's status and message  ErrGuest        instance kept
//	trap or exit (proc_exit, panic)   500 "wasm stage S trapped: ..." ErrTrap     replaced
//	context deadline                  504 "wasm stage S timed out"  context.DeadlineExceeded  replaced
//	context canceled                  503 "wasm stage S canceled"   context.Canceled          replaced
//	memory grow past the limit        507 "... exceeded its memory limit of N" ErrMemoryLimit replaced
//	input larger than the limit       413                           ErrMemoryLimit  not called
//	pointer/length outside memory,
//	output over MaxOutput             500 "... returned an invalid result ..." ErrBadOutput replaced
//	stage not exported                500                           ErrNoStage
//	Module closed                     503                           ErrClosed
//
// The memory limit is a 507 (Insufficient Storage) rather than a plain 500
// so that a caller and the metrics can tell "this input needed more memory
// than the stage is allowed" from a crash; the pipeline may map it as it
// likes through ErrMemoryLimit or StatusMemoryLimit.
//
// A discarded instance is closed and a replacement is instantiated in the
// background, so the failing call returns at once and the next call gets a
// fresh instance (waiting for it, within its deadline, when the pool is
// empty). An instance whose memory grew past Options.RecycleAbovePages is
// replaced the same way after a successful call, since memory never
// shrinks. Nothing a guest does can crash the process.
//
// # Sandbox
//
// A guest gets WASI preview 1 with no preopened directories, no arguments,
// no environment, a fixed wall clock, a fake monotonic clock, instant
// sleeps and deterministic random bytes; stdout is discarded and stderr is
// kept (its first and last KiB) to explain a failure in the log. It cannot
// open a socket: WASI preview 1 has no call to create one. Options.Env,
// Clock, Random and Mounts (read-only) grant more, as cortex.yaml asks.
//
// # Cost
//
// Stopping a runaway guest needs wazero's WithCloseOnContextDone, which
// compiles a check into every loop header and starts a watcher goroutine
// per call. The call overhead stays within a few microseconds, but guest
// code runs several times slower, most of all Go guests (the Go wasm
// backend puts a loop around every function body). See BENCHMARKS.md.
// Options.Uninterruptible turns it off for a guest that is trusted to
// finish: its code then runs at wazero's full speed, and a deadline is
// noticed only when the call returns.
//
// # Metrics
//
// Stats reports the pool size, live instances, instantiations and discards
// by reason; the pipeline times each stage call itself.
//
// It owns the sandbox (wazero), the ABI and the instance pool; it must not
// import runtime (the pipeline imports it, not the other way round),
// adapters or anything outside the function-binary rule of
// internal/depcheck.
package wasm
