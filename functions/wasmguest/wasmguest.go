//go:build wasip1

package wasmguest

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"unsafe"
)

// Func is a stage: bytes in, bytes out.
type Func func(in []byte) ([]byte, error)

// Error is an error that carries the status the caller should see, 400 to
// 599. Message reaches the caller as {"error": "..."}.
type Error struct {
	Status  int
	Message string
	// Err is the wrapped error, if any (kept for errors.Is/As in the guest).
	Err error
}

// Errorf returns an *Error with status and a formatted message. A %w verb
// wraps its operand as Err.
func Errorf(status int, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Status: status, Message: err.Error(), Err: errors.Unwrap(err)}
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

var (
	pre, post Func
	// input is the buffer alloc handed to the host; output is the result of
	// the last call. Both stay referenced until the next call so the Go
	// garbage collector (which never moves objects) cannot free them while
	// the host writes or reads them.
	input, output []byte
)

// Preprocess registers fn as the module's preprocess stage. Call it from an
// init function; registering twice panics.
func Preprocess(fn Func) {
	if pre != nil {
		panic("wasmguest: Preprocess registered twice")
	}
	pre = fn
}

// Postprocess registers fn as the module's postprocess stage. Call it from
// an init function; registering twice panics.
func Postprocess(fn Func) {
	if post != nil {
		panic("wasmguest: Postprocess registered twice")
	}
	post = fn
}

// Log sends a message to the function's log at level (slog levels: -4
// debug, 0 info, 4 warn, 8 error).
func Log(level slog.Level, msg string) {
	if msg == "" {
		hostLog(int32(level), 0, 0)
		return
	}
	b := unsafe.StringData(msg)
	hostLog(int32(level), uint32(uintptr(unsafe.Pointer(b))), uint32(len(msg)))
}

// Logf formats a message and sends it to the function's log at level.
func Logf(level slog.Level, format string, args ...any) {
	Log(level, fmt.Sprintf(format, args...))
}

//go:wasmimport cortex fail
func hostFail(status int32, ptr, length uint32)

//go:wasmimport cortex log
func hostLog(level int32, ptr, length uint32)

//go:wasmexport cortex_abi_v1
func abiV1() {}

// stage bits for cortex_stages.
const (
	stagePre  = 1 << 0
	stagePost = 1 << 1
)

//go:wasmexport cortex_stages
func stages() uint32 {
	var s uint32
	if pre != nil {
		s |= stagePre
	}
	if post != nil {
		s |= stagePost
	}
	return s
}

//go:wasmexport alloc
func alloc(size uint32) uint32 {
	input = make([]byte, size)
	output = nil
	return addr(input)
}

//go:wasmexport preprocess
func preprocess(ptr, length uint32) uint64 { return run("preprocess", pre, ptr, length) }

//go:wasmexport postprocess
func postprocess(ptr, length uint32) uint64 { return run("postprocess", post, ptr, length) }

func run(name string, fn Func, ptr, length uint32) (ret uint64) {
	output = nil
	if fn == nil {
		fail(500, "wasm module has no "+name+" stage registered")
		return 0
	}
	// The host passes back the buffer alloc returned (or nothing for an
	// empty input); anything else is a host bug, refused rather than read.
	var in []byte
	if length > 0 {
		if ptr != addr(input) || int(length) > len(input) {
			fail(500, "wasm stage "+name+": input is not the buffer alloc returned")
			return 0
		}
		in = input[:length:length]
	}
	defer func() {
		if r := recover(); r != nil {
			Logf(slog.LevelError, "wasm stage %s panicked: %v\n%s", name, r, debug.Stack())
			fail(500, "wasm stage "+name+" panicked")
			ret = 0
		}
	}()
	out, err := fn(in)
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			fail(se.Status, se.Message)
		} else {
			Logf(slog.LevelError, "wasm stage %s: %v", name, err)
			fail(500, "wasm stage "+name+" failed")
		}
		return 0
	}
	if len(out) == 0 {
		return 0
	}
	output = out
	return uint64(addr(out))<<32 | uint64(len(out))
}

func fail(status int, msg string) {
	var p uint32
	if msg != "" {
		p = uint32(uintptr(unsafe.Pointer(unsafe.StringData(msg))))
	}
	hostFail(int32(status), p, uint32(len(msg)))
}

func addr(b []byte) uint32 {
	if cap(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
