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
// New puts the limits of the next section into the module's binary (see
// bound.go), then compiles it once per process through a shared wazero
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
//	call stack past its share         500 "wasm stage S trapped: stack overflow (...)" ErrTrap replaced
//	input larger than linear memory   413                           ErrMemoryLimit  not called
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
// # Limits
//
// Options.MemoryLimitPages (cortex.yaml wasm.memory) bounds everything an
// instance can make the host allocate, not only its linear memory. wazero
// has no setting for tables or the call stack, so New rewrites the module
// before compiling it (bound.go):
//
//   - Tables: a table declared without a maximum gets its initial size as
//     its maximum, so table.grow on it returns -1; the tables' maxima, at 8
//     bytes an element, are taken out of the limit, and a module whose
//     tables alone would exceed it is refused by New. (Before, a guest
//     could grow a table by 2^26 elements, 512 MiB of host memory, per
//     call, or by 2^32 and kill the process.)
//   - Call stack: 1/16 of the limit (4 MiB of 64 MiB). Each function adds
//     an estimate of its native frame to a counter on entry (8 bytes an
//     instruction and a value a call or block type makes, more for
//     vectors, parameters and locals: 10-60 times the real frame of
//     compiled guests, and more than any frame we could construct) and a
//     call that would pass the share traps with a 500
//     saying so. An instance whose stack grew past half its share is
//     replaced after its call: wazero never shrinks a stack. Recursion
//     that needs more depth needs a larger wasm.memory.
//   - Linear memory gets the rest. An input larger than that is refused
//     with 413 before any instance is touched.
//
// cortex.log is limited too: at most 100 lines and 64 KiB per call and
// 1000 lines and 1 MiB per second per Module; lines past that are dropped,
// counted in Stats (LogDropped, LogDroppedBytes) and reported by one
// warning at most once a second.
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
// per call; the rewrite adds an empty loop at every function entry, so
// recursion without a loop is checked too. The call overhead stays within
// a few microseconds, but guest code runs several times slower, most of
// all Go guests (the Go wasm backend puts a loop around every function
// body). See BENCHMARKS.md.
// Options.Uninterruptible turns it off for a guest that is trusted to
// finish: its code then runs at nearly wazero's full speed, and a deadline
// is noticed only when the call returns. The trade-off: a guest that never
// returns holds its instance and the request's concurrency slot until the
// process is replaced (the runtime replaces a process whose prediction
// overran its deadline by limits.overrun_grace), and one that computes for
// a long time holds a CPU that long. What it can no longer do is stall
// the whole process: native code is never preempted by the Go scheduler,
// and every garbage collection starts by stopping the world, which waited
// for such a call to end, so one looping request froze health checks and
// every other request (with two cores, two loops did even without a GC).
// The rewrite gives uninterruptible code a yield instead: every 65536
// loop iterations and function calls it runs memory.grow 0, which wazero
// executes in Go, where the goroutine can be preempted. (Capping
// uninterruptible calls at GOMAXPROCS-1 would not have helped: the
// stop-the-world waits for the one running call too.)
//
// # Metrics
//
// Stats reports the pool size, live instances, instantiations, discards
// by reason and the guest log lines dropped; the pipeline times each stage
// call itself.
//
// It owns the sandbox (wazero), the ABI and the instance pool; it must not
// import runtime (the pipeline imports it, not the other way round),
// adapters or anything outside the function-binary rule of
// internal/depcheck.
package wasm
