package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cortexfn/cortex/functions"
)

// Every error a call returns is a *functions.Error whose Err wraps one of
// these (or context.DeadlineExceeded / context.Canceled), so the pipeline
// can count failures by cause with errors.Is while the caller sees Status
// and Message.
var (
	// ErrGuest: the guest failed the call itself (cortex.fail); the status
	// and message are the guest's. The instance is kept.
	ErrGuest = errors.New("wasm: guest failed the call")
	// ErrTrap: the guest trapped (out-of-bounds access, unreachable, stack
	// overflow...) or exited. 500; the instance is replaced.
	ErrTrap = errors.New("wasm: guest trapped")
	// ErrMemoryLimit: the guest tried to grow its memory past
	// Options.MemoryLimitPages. 507 Insufficient Storage (the server ran out
	// of a resource it was allowed for this request, not a bug in the
	// request or a crash); the instance is replaced.
	ErrMemoryLimit = errors.New("wasm: guest exceeded its memory limit")
	// ErrBadOutput: the guest returned a pointer or length outside its
	// memory, or an output over Options.MaxOutput. 500; the instance is
	// replaced.
	ErrBadOutput = errors.New("wasm: guest returned an invalid result")
	// ErrNoStage: the module does not export the stage that was called. 500.
	ErrNoStage = errors.New("wasm: module has no such stage")
	// ErrClosed: the Module was closed. 503.
	ErrClosed = errors.New("wasm: module closed")
)

// StatusMemoryLimit is the status of a call stopped by the memory limit.
const StatusMemoryLimit = http.StatusInsufficientStorage

func stageError(status int, msg string, err error) error {
	return &functions.Error{Status: status, Message: msg, Err: err}
}

// ctxError is the error for a call stopped by its context, while waiting
// for an instance or running.
func ctxError(st stage, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return stageError(http.StatusGatewayTimeout,
			fmt.Sprintf("wasm stage %s timed out", st), err)
	}
	return stageError(http.StatusServiceUnavailable,
		fmt.Sprintf("wasm stage %s canceled", st), err)
}

// trapReason turns a wazero error ("wasm error: out of bounds memory
// access\nwasm stack trace: ...") into its first line, without the prefix.
func trapReason(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimPrefix(s, "wasm error: ")
}
