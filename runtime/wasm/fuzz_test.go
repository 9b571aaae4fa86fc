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
