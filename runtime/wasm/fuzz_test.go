package wasm_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/wasm"
)

// FuzzPostprocess feeds arbitrary bytes through a real guest: valid UTF-8
// comes back upper-cased exactly as bytes.ToUpper does it, anything else
// is the guest's 400.
func FuzzPostprocess(f *testing.F) {
	m := newModule(f, "echo", wasm.Options{Instances: 1, Logger: slog.New(slog.DiscardHandler)})
	for _, s := range []string{"", "hello", "grüße", "\xff\xfe", "a\x00b", "日本語"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := m.Postprocess(context.Background(), in)
		if utf8.Valid(in) {
			if err != nil || !bytes.Equal(out, bytes.ToUpper(in)) {
				t.Fatalf("Postprocess(%q) = %q, %v; want %q", in, out, err, bytes.ToUpper(in))
			}
			return
		}
		if got := functions.StatusOf(err); got != 400 {
			t.Fatalf("Postprocess(%q): got status %d (%v), want 400", in, got, err)
		}
	})
}

// FuzzHostileResult lets the input choose what a guest returns to the host:
// raw result words, cortex.fail arguments, output sizes and alloc results.
// Whatever it is, the host must answer with an output within MaxOutput or
// a *functions.Error with a 4xx/5xx status, and keep serving.
func FuzzHostileResult(f *testing.F) {
	const maxOutput = 1 << 20
	m := newModule(f, "hostile", wasm.Options{
		Instances:        1,
		MaxOutput:        maxOutput,
		MemoryLimitPages: 1024,
		Timeout:          10 * time.Second,
		Logger:           slog.New(slog.DiscardHandler),
	})
	f.Add(hostileRet(0xfffffff0, 8))
	f.Add(hostileRet(16, 0xffffffff))
	f.Add(hostileRet(1024, 16))
	f.Add(hostile('f', 418, 0xffffff00, 64))
	f.Add(hostile('f', 422, 1024, 5000))
	f.Add(hostile('o', maxOutput+1))
	f.Add(hostile('o', 0xffffffff))
	f.Add(hostile('a', 0xfffff000))
	f.Add(hostile('s', 100))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := m.Preprocess(context.Background(), in)
		if err != nil {
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status < 400 || fe.Status > 599 {
				t.Fatalf("Preprocess(%x): got %v, want a *functions.Error with a 4xx/5xx status", in, err)
			}
		} else if len(out) > maxOutput {
			t.Fatalf("Preprocess(%x): got %d bytes, over MaxOutput", in, len(out))
		}
		// Whatever happened, the next call is served.
		probe := binary.LittleEndian.AppendUint32([]byte{'o'}, 3)
		if out, err := m.Preprocess(context.Background(), probe); err != nil && !errors.Is(err, wasm.ErrBadOutput) {
			// ErrBadOutput is allowed here: an 'a' input poisons the next alloc.
			t.Fatalf("after Preprocess(%x): got %q, %v", in, out, err)
		}
	})
}

// FuzzBound holds the module rewrite that puts the limits into a module
// (bound.go) to wazero's reading of modules: what it rewrites, wazero
// compiles exactly when it compiles the original, so a rewrite never makes
// a module wazero refuses acceptable (or reach the rewrite's own globals).
// What it refuses never reaches wazero (it may be a module that makes
// wazero's decoder allocate without bound), so the original is compiled
// only when the rewrite succeeds.
func FuzzBound(f *testing.F) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx) // the features New enables
	f.Cleanup(func() { rt.Close(ctx) })
	for _, g := range []rawGuest{tableGuest(), recursionGuest(), loopGuest(), logGuest(), multiValueGuest(), binaryRecursionGuest(), initLogGuest(3), multiValueFrameGuest()} {
		f.Add(g.bytes())
	}
	compiles := func(bin []byte) error {
		c, err := rt.CompileModule(ctx, bin)
		if err == nil {
			c.Close(ctx)
		}
		return err
	}
	f.Fuzz(func(t *testing.T, bin []byte) {
		for _, yield := range []bool{false, true} {
			out, err := wasm.Bound(bin, 1<<20, yield)
			if err != nil {
				continue
			}
			orig := compiles(bin)
			if got := compiles(out); (got == nil) != (orig == nil) {
				t.Fatalf("yield %v: wazero on the original: %v; on the rewrite: %v", yield, orig, got)
			}
		}
	})
}
