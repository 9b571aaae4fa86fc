package wasm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"runtime"
	"time"
)

// Options configures a Module. The zero value is safe: one instance per
// CPU, a 128 MiB memory cap per instance, 6 MiB outputs, no filesystem,
// network, environment, real clock or randomness.
type Options struct {
	// Instances is the pool size: how many calls may run at once. All are
	// instantiated (and their _initialize run) by New, so the first request
	// pays no instantiation. Zero means runtime.GOMAXPROCS(0). A call that
	// finds every instance busy waits, bounded by its context.
	Instances int
	// MemoryLimitPages caps each instance's memory, in 64 KiB pages: its
	// linear memory, its tables and its call stack together (see the
	// package doc's Limits). The call stack gets 1/16 of it and the tables
	// what they may hold at their maximum size; linear memory the rest. A
	// guest that tries to grow its memory past that fails the call with 507
	// (see ErrMemoryLimit), one whose call stack passes its share traps
	// (500), and the instance is replaced. Zero means
	// DefaultMemoryLimitPages; at most 65536 (4 GiB).
	MemoryLimitPages uint32
	// MaxOutput is the largest output, in bytes, a guest may return. A larger
	// one fails the call with 500 (ErrBadOutput). Zero means DefaultMaxOutput.
	MaxOutput int
	// RecycleAbovePages: an instance whose linear memory and call stack
	// together grew past this many pages, or whose call stack grew past
	// half its share, is discarded after its call (neither ever shrinks)
	// and replaced in the background. Zero means half of MemoryLimitPages.
	RecycleAbovePages uint32
	// Timeout, when positive, bounds every call in addition to the caller's
	// context deadline. Zero means the context alone bounds a call.
	Timeout time.Duration
	// CacheDir, when set, keeps wazero's compilation cache on disk there so
	// a restarted process does not compile again (the cache is keyed by the
	// module, the wazero version and the architecture). Without it the
	// cache lives in this process only.
	CacheDir string
	// Uninterruptible runs guest code without the checks that let a
	// deadline or cancellation stop it mid-call, several times faster (see
	// the package doc's Cost). A call then always runs to its end: the
	// caller still gets its 504 at the deadline (the runtime does not wait),
	// but the instance, and the request's concurrency slot, stay busy until
	// the guest returns, and a guest that never returns holds them for
	// good. Its loops and calls still yield to the Go scheduler (every
	// 65536 iterations and calls), so the rest of the process keeps
	// running. For stages
	// whose code the function's owner trusts to finish (cortex.yaml
	// wasm.interruptible: false).
	Uninterruptible bool
	// Logger receives what the guest sends through the cortex.log import
	// (within the log limits of the package doc), and discards with their
	// cause. Nil means slog.Default().
	Logger *slog.Logger

	// Grants, all off by default (cortex.yaml may turn them on). There is no
	// grant for the network: WASI preview 1 has no way to open a socket, so
	// a guest can never reach the network.

	// Env is the environment the guest sees. Nil means none.
	Env map[string]string
	// Clock gives the guest the real wall clock, monotonic clock and sleep.
	// Without it the guest sees a fixed wall clock (2022-01-01) and a fake
	// monotonic clock, and sleeping returns at once.
	Clock bool
	// Random gives the guest crypto/rand. Without it random_get returns a
	// deterministic sequence, the same in every instance.
	Random bool
	// Mounts are host directories the guest may read. Without any, the
	// guest has no filesystem at all. Mounts are always read-only.
	Mounts []Mount
}

// Mount exposes a host directory to a guest, read-only.
type Mount struct {
	// HostDir is the directory on the host.
	HostDir string
	// GuestPath is where the guest sees it, an absolute path such as /data.
	GuestPath string
}

// Defaults for Options.
const (
	DefaultMemoryLimitPages = 2048    // 128 MiB
	DefaultMaxOutput        = 6 << 20 // Lambda's buffered payload limit, as limits.max_body
	maxPages                = 65536   // 4 GiB: the most a 32-bit memory can address
)

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Instances == 0 {
		o.Instances = runtime.GOMAXPROCS(0)
	}
	if o.MemoryLimitPages == 0 {
		o.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if o.MaxOutput == 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if o.RecycleAbovePages == 0 {
		o.RecycleAbovePages = max(o.MemoryLimitPages/2, 1)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// validate reports every problem in o (after withDefaults), each with its
// field name.
func (o Options) validate() error {
	var errs []error
	if o.Instances < 0 {
		errs = append(errs, fmt.Errorf("Instances: %d is negative", o.Instances))
	}
	if o.MemoryLimitPages > maxPages {
		errs = append(errs, fmt.Errorf("MemoryLimitPages: %d is over the 32-bit maximum of %d pages", o.MemoryLimitPages, maxPages))
	}
	if o.MaxOutput < 0 {
		errs = append(errs, fmt.Errorf("MaxOutput: %d is negative", o.MaxOutput))
	}
	if o.RecycleAbovePages > o.MemoryLimitPages {
		errs = append(errs, fmt.Errorf("RecycleAbovePages: %d is above MemoryLimitPages (%d)", o.RecycleAbovePages, o.MemoryLimitPages))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout: %s is negative", o.Timeout))
	}
	for i, mt := range o.Mounts {
		if !path.IsAbs(mt.GuestPath) {
			errs = append(errs, fmt.Errorf("Mounts[%d].GuestPath: %q must be an absolute path", i, mt.GuestPath))
		}
		if fi, err := os.Stat(mt.HostDir); err != nil {
			errs = append(errs, fmt.Errorf("Mounts[%d].HostDir: %w", i, err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("Mounts[%d].HostDir: %q is not a directory", i, mt.HostDir))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wasm options: %w", err)
	}
	return nil
}
