package wasm_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime/wasm"
)

// quiet is a logger for modules whose guest logs are not under test.
func quiet(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(&testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ tb testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	w.tb.Logf("%s", bytes.TrimSpace(p))
	return len(p), nil
}

// wantError checks that err is a *functions.Error with status whose message
// has prefix, and that it wraps target.
func wantError(t *testing.T, err error, status int, prefix string, target error) {
	t.Helper()
	var fe *functions.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got error %v (%T), want a *functions.Error", err, err)
	}
	if fe.Status != status {
		t.Errorf("got status %d, want %d (error: %v)", fe.Status, status, err)
	}
	if !strings.HasPrefix(fe.Message, prefix) {
		t.Errorf("got message %q, want prefix %q", fe.Message, prefix)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("got error %v, want it to wrap %v", err, target)
	}
}

func call(t *testing.T, m *wasm.Module, in string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.Preprocess(ctx, []byte(in))
}

// wantServed checks that m serves a normal request after a failure.
func wantServed(t *testing.T, m *wasm.Module) {
	t.Helper()
	out, err := call(t, m, "echo:still here")
	if err != nil || string(out) != "still here" {
		t.Fatalf("after the failure: got %q, %v; want %q", out, err, "still here")
	}
}

func TestRoundTrip(t *testing.T) {
	m := newModule(t, "echo", wasm.Options{Instances: 2, Logger: quiet(t)})
	if !m.HasPreprocess() || !m.HasPostprocess() {
		t.Fatalf("HasPreprocess, HasPostprocess = %v, %v; want true, true", m.HasPreprocess(), m.HasPostprocess())
	}
	big := bytes.Repeat([]byte("abcdefgh"), 1<<17) // 1 MiB
	tests := []struct {
		name string
		post bool
		in   []byte
		want []byte
	}{
		{name: "pre", in: []byte("hello, wasm"), want: []byte("hello, wasm")},
		{name: "pre empty", in: nil, want: []byte{}},
		{name: "pre 1MiB", in: big, want: big},
		{name: "post", post: true, in: []byte("hello, wasm"), want: []byte("HELLO, WASM")},
		{name: "post utf8", post: true, in: []byte("grüße"), want: []byte("GRÜßE")},
		{name: "post 1MiB", post: true, in: big, want: bytes.ToUpper(big)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := m.Preprocess
			if tt.post {
				f = m.Postprocess
			}
			got, err := f(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %.40q (%d bytes), want %.40q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
		})
	}
	// The output is the caller's copy: the next call must not change it.
	a, _ := m.Preprocess(context.Background(), []byte("first"))
	if _, err := m.Preprocess(context.Background(), []byte("SECOND")); err != nil {
		t.Fatal(err)
	}
	if string(a) != "first" {
		t.Errorf("a later call changed an earlier output to %q", a)
	}
	if s := m.Stats(); s.Started != 2 || s.Live != 2 {
		t.Errorf("got Stats %+v, want 2 instances started and live (no per-call instantiation)", s)
	}
}

func TestGuestError(t *testing.T) {
	m := newModule(t, "misbehave", wasm.Options{Instances: 1, Logger: quiet(t)})
	tests := []struct {
		name, in string
		status   int
		message  string
	}{
		{name: "status and message", in: "fail:422:field sepal_length is missing", status: 422, message: "field sepal_length is missing"},
		{name: "5xx", in: "fail:503:model warming up", status: 503, message: "model warming up"},
		{name: "status out of range", in: "fail:200:not an error status", status: 500, message: "not an error status"},
		{name: "plain error hides detail", in: "error:secret detail", status: 500, message: "wasm stage preprocess failed"},
		{name: "panic is recovered", in: "panic:boom", status: 500, message: "wasm stage preprocess panicked"},
		{name: "unknown command", in: "nope", status: 400, message: `unknown command "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(t, m, tt.in)
			wantError(t, err, tt.status, tt.message, wasm.ErrGuest)
			var fe *functions.Error
			if errors.As(err, &fe) && fe.Message != tt.message {
				t.Errorf("got message %q, want %q", fe.Message, tt.message)
			}
			wantServed(t, m)
		})
	}
	// A guest failure is the guest's answer, not a broken instance.
	if s := m.Stats(); s.Started != 1 {
		t.Errorf("got %d instances started, want 1 (guest failures keep their instance)", s.Started)
	}

	echo := newModule(t, "echo", wasm.Options{Instances: 1, Logger: quiet(t)})
	_, err := echo.Postprocess(context.Background(), []byte{0xff, 0xfe})
	wantError(t, err, 400, "input is not valid UTF-8", wasm.ErrGuest)
}

func TestTrap(t *testing.T) {
	m := newModule(t, "misbehave", wasm.Options{Instances: 1, Logger: quiet(t)})
	tests := []struct {
		name, in, message string
	}{
		{name: "out of bounds", in: "trap", message: "wasm stage preprocess trapped: out of bounds memory access"},
		{name: "exit", in: "exit:3", message: "wasm stage preprocess trapped: guest exited with code 3"},
		{name: "exit 0", in: "exit:0", message: "wasm stage preprocess trapped: guest exited with code 0"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(t, m, tt.in)
			wantError(t, err, 500, tt.message, wasm.ErrTrap)
			wantServed(t, m)
			if got := m.Stats().Discards[wasm.DiscardTrap]; got != uint64(i+1) {
				t.Errorf("got %d trap discards, want %d", got, i+1)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	m := newModule(t, "misbehave", wasm.Options{Instances: 1, Logger: quiet(t)})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := m.Preprocess(ctx, []byte("loop"))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("an infinite loop with a 200ms deadline returned after %v", d)
	}
	wantError(t, err, 504, "wasm stage preprocess timed out", context.DeadlineExceeded)
	wantServed(t, m)

	// Options.Timeout bounds a call whose context has no deadline (and
	// the wait for the replacement instance: leave it room under -race).
	mt := newModule(t, "misbehave", wasm.Options{Instances: 1, Timeout: time.Second, Logger: quiet(t)})
	_, err = mt.Preprocess(context.Background(), []byte("loop"))
	wantError(t, err, 504, "wasm stage preprocess timed out", context.DeadlineExceeded)
	wantServed(t, mt)

	// Cancellation (the caller went away) stops the guest too.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = m.Preprocess(ctx, []byte("loop"))
	wantError(t, err, 503, "wasm stage preprocess canceled", context.Canceled)
	wantServed(t, m)

	// A context already done never reaches an instance.
	_, err = m.Preprocess(ctx, []byte("echo:x"))
	wantError(t, err, 503, "wasm stage preprocess canceled", context.Canceled)

	s := m.Stats()
	if s.Discards[wasm.DiscardDeadline] != 1 || s.Discards[wasm.DiscardCanceled] != 1 {
		t.Errorf("got discards %v, want one deadline and one canceled", s.Discards)
	}

	// Waiting for a busy pool is bounded by the deadline as well.
	release := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		close(release)
		m.Preprocess(ctx, []byte("loop"))
	}()
	<-release
	time.Sleep(50 * time.Millisecond)
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = m.Preprocess(ctx, []byte("echo:x"))
	wantError(t, err, 504, "wasm stage preprocess timed out", context.DeadlineExceeded)
}

// TestUninterruptible: the same guest busy for 300 ms by the real clock,
// under a 20 ms deadline. An interruptible call is stopped (504, instance
// replaced); an uninterruptible one runs to its end and returns its output,
// its instance kept.
func TestUninterruptible(t *testing.T) {
	for _, uninterruptible := range []bool{false, true} {
		m := newModule(t, "misbehave", wasm.Options{Instances: 1, Clock: true, Uninterruptible: uninterruptible, Logger: quiet(t)})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		out, err := m.Preprocess(ctx, []byte("spin:300ms"))
		cancel()
		if uninterruptible {
			if err != nil || string(out) != "spun" {
				t.Errorf("uninterruptible: got %q, %v; want the guest's output", out, err)
			}
		} else {
			wantError(t, err, 504, "wasm stage preprocess timed out", context.DeadlineExceeded)
		}
		wantServed(t, m)
		if got, want := m.Stats().Discards[wasm.DiscardDeadline], map[bool]uint64{false: 1, true: 0}[uninterruptible]; got != want {
			t.Errorf("uninterruptible %v: %d deadline discards, want %d", uninterruptible, got, want)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	var logs testutil.SyncBuffer
	const limit = 1024 // 64 MiB
	m := newModule(t, "misbehave", wasm.Options{
		Instances:         1,
		MemoryLimitPages:  limit,
		RecycleAbovePages: limit,
		Logger:            slog.New(slog.NewTextHandler(&logs, nil)),
	})
	_, err := call(t, m, "bomb")
	wantError(t, err, wasm.StatusMemoryLimit, "wasm stage preprocess exceeded its memory limit of 64 MiB", wasm.ErrMemoryLimit)
	wantServed(t, m)
	if got := m.Stats().Discards[wasm.DiscardMemoryLimit]; got != 1 {
		t.Errorf("got %d memory_limit discards, want 1", got)
	}
	// The Go runtime's own explanation reaches the log.
	if !strings.Contains(logs.String(), "out of memory") {
		t.Errorf("the discard log does not quote the guest's stderr:\n%s", logs.String())
	}

	// An input that cannot fit is refused before any instance is touched.
	_, err = m.Preprocess(context.Background(), make([]byte, limit*65536+1))
	wantError(t, err, 413, "wasm stage preprocess: input of", wasm.ErrMemoryLimit)
}

// TestInputLimit: an input larger than the linear memory the limit leaves
// once the call stack and the tables have their shares is refused with 413
// before any instance is touched, as one larger than the whole limit is
// (one in between used to reach the guest and fail with 507).
func TestInputLimit(t *testing.T) {
	const limit = 128 // 8 MiB, 512 KiB of it the call stack's
	m := newModule(t, "echo", wasm.Options{Instances: 1, MemoryLimitPages: limit, Logger: quiet(t)})
	linear := int(m.MemoryPages()) * 65536
	if linear > limit*65536-512<<10 {
		t.Fatalf("linear memory is %d bytes, want at most %d", linear, limit*65536-512<<10)
	}
	_, err := m.Preprocess(context.Background(), make([]byte, linear+1))
	wantError(t, err, 413, fmt.Sprintf("wasm stage preprocess: input of %d bytes does not fit its memory limit of 8 MiB", linear+1), wasm.ErrMemoryLimit)
	if s := m.Stats(); s.Started != 1 || s.Discards[wasm.DiscardMemoryLimit] != 0 {
		t.Errorf("got Stats %+v, want the instance untouched", s)
	}
	// An input as large as linear memory is the guest's to fail with:
	// it cannot fit beside the guest's own data.
	_, err = m.Preprocess(context.Background(), make([]byte, linear))
	wantError(t, err, wasm.StatusMemoryLimit, "wasm stage preprocess exceeded its memory limit of 8 MiB", wasm.ErrMemoryLimit)
	if out, err := m.Preprocess(context.Background(), []byte("still here")); err != nil || string(out) != "still here" {
		t.Fatalf("after the failure: got %q, %v", out, err)
	}
}

func TestRecycle(t *testing.T) {
	m := newModule(t, "misbehave", wasm.Options{Instances: 1, MemoryLimitPages: 2048, RecycleAbovePages: 512, Logger: quiet(t)})
	out, err := call(t, m, "grow:48") // 48 MiB, past the 32 MiB recycle mark
	if err != nil || string(out) != "grown" {
		t.Fatalf("got %q, %v; want \"grown\"", out, err)
	}
	wantServed(t, m)
	if got := m.Stats().Discards[wasm.DiscardRecycle]; got != 1 {
		t.Errorf("got %d recycle discards, want 1", got)
	}
}

// hostile builds an input for the hostile guest.
func hostile(op byte, args ...uint32) []byte {
	b := []byte{op}
	for _, a := range args {
		b = binary.LittleEndian.AppendUint32(b, a)
	}
	return b
}

func hostileRet(ptr, n uint32) []byte {
	return binary.LittleEndian.AppendUint64([]byte{'r'}, uint64(ptr)<<32|uint64(n))
}

func TestHostileReturns(t *testing.T) {
	const maxOutput = 8 << 20
	m := newModule(t, "hostile", wasm.Options{Instances: 1, MaxOutput: maxOutput, Logger: quiet(t)})
	if !m.HasPreprocess() || m.HasPostprocess() {
		t.Fatalf("HasPreprocess, HasPostprocess = %v, %v; want true, false", m.HasPreprocess(), m.HasPostprocess())
	}
	tests := []struct {
		name    string
		in      []byte
		status  int
		message string
		target  error
	}{
		{name: "pointer past memory", in: hostileRet(0xfffffff0, 8), status: 500,
			message: "wasm stage preprocess returned an invalid result: 8 bytes at 0xfffffff0, outside", target: wasm.ErrBadOutput},
		// A fresh Go guest has 2-4 MiB of memory: 5 MiB from 2 MiB lies past it.
		{name: "length past memory", in: hostileRet(2<<20, 5<<20), status: 500,
			message: "wasm stage preprocess returned an invalid result: 5242880 bytes at 0x200000, outside", target: wasm.ErrBadOutput},
		{name: "pointer+length wraps", in: hostileRet(0xffffffff, 2), status: 500,
			message: "wasm stage preprocess returned an invalid result", target: wasm.ErrBadOutput},
		{name: "huge length", in: hostileRet(16, 0xffffffff), status: 500,
			message: "wasm stage preprocess returned 4294967295 bytes, over the limit of 8388608", target: wasm.ErrBadOutput},
		{name: "valid output over MaxOutput", in: hostile('o', maxOutput+1), status: 500,
			message: "wasm stage preprocess returned 8388609 bytes, over the limit of 8388608", target: wasm.ErrBadOutput},
		{name: "fail message outside memory", in: hostile('f', 418, 0xffffff00, 64), status: 418,
			message: "wasm stage preprocess failed (its failure message lies outside its memory)", target: wasm.ErrGuest},
		{name: "fail with a status that is no error", in: hostile('f', 0xffffffff, 0, 0), status: 500,
			message: "", target: wasm.ErrGuest},
		{name: "fail message too long is cut", in: hostile('s', 1<<20), status: 422,
			message: strings.Repeat("m", 4096) + "…", target: wasm.ErrGuest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Preprocess(context.Background(), tt.in)
			wantError(t, err, tt.status, tt.message, tt.target)
			out, err := m.Preprocess(context.Background(), hostile('o', 5))
			if err != nil || string(out) != "xxxxx" {
				t.Fatalf("after the failure: got %q, %v; want \"xxxxx\"", out, err)
			}
		})
	}

	t.Run("alloc returns a pointer outside memory", func(t *testing.T) {
		if _, err := m.Preprocess(context.Background(), hostile('a', 0xfffff000)); err != nil {
			t.Fatal(err)
		}
		// An input larger than the current buffer makes the host call alloc.
		_, err := m.Preprocess(context.Background(), make([]byte, 100000))
		wantError(t, err, 500, "wasm stage preprocess: alloc(102400) returned 0xfffff000, outside", wasm.ErrBadOutput)
		if out, err := m.Preprocess(context.Background(), hostile('o', 3)); err != nil || string(out) != "xxx" {
			t.Fatalf("after the failure: got %q, %v", out, err)
		}
	})

	t.Run("no postprocess", func(t *testing.T) {
		_, err := m.Postprocess(context.Background(), []byte("x"))
		wantError(t, err, 500, "wasm module hostile-", wasm.ErrNoStage)
	})
	if got := m.Stats().Discards[wasm.DiscardBadOutput]; got != 6 {
		t.Errorf("got %d bad_output discards, want 6", got)
	}
}

func TestConcurrent(t *testing.T) {
	m := newModule(t, "echo", wasm.Options{Instances: 4, Logger: quiet(t)})
	const workers, calls = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				in := fmt.Appendf(nil, "worker %d call %d %s", w, i, strings.Repeat("z", i*37))
				pre, err := m.Preprocess(context.Background(), in)
				if err != nil || !bytes.Equal(pre, in) {
					errs <- fmt.Errorf("preprocess %q: got %q, %v", in, pre, err)
					return
				}
				post, err := m.Postprocess(context.Background(), in)
				if err != nil || !bytes.Equal(post, bytes.ToUpper(in)) {
					errs <- fmt.Errorf("postprocess %q: got %q, %v", in, post, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := m.Stats(); s.Started != 4 {
		t.Errorf("got %d instances started, want 4: a call must never instantiate", s.Started)
	}
}

func TestSandbox(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("top secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newModule(t, "misbehave", wasm.Options{Instances: 1, Logger: quiet(t)})

	t.Run("no filesystem", func(t *testing.T) {
		for _, p := range []string{filepath.Join(dir, "secret.txt"), "/etc/passwd", "secret.txt"} {
			out, err := call(t, m, "open:"+p)
			if err != nil || !bytes.HasPrefix(out, []byte("error: ")) {
				t.Errorf("open %s: got %q, %v; want the guest to see an error", p, out, err)
			}
		}
	})

	t.Run("no network", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan struct{}, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
				accepted <- struct{}{}
			}
		}()
		out, err := call(t, m, "dial:"+ln.Addr().String())
		if err != nil || !bytes.HasPrefix(out, []byte("error: ")) {
			t.Errorf("dial: got %q, %v; want the guest to see an error", out, err)
		}
		select {
		case <-accepted:
			t.Error("the guest's dial reached a host listener")
		case <-time.After(200 * time.Millisecond):
		}
	})

	type ambient struct {
		Env  []string `json:"env"`
		Now  string   `json:"now"`
		Rand string   `json:"rand"`
	}
	read := func(t *testing.T, m *wasm.Module) ambient {
		out, err := call(t, m, "ambient")
		if err != nil {
			t.Fatal(err)
		}
		var a ambient
		if err := json.Unmarshal(out, &a); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return a
	}

	t.Run("no environment, clock or randomness", func(t *testing.T) {
		other := newModule(t, "misbehave", wasm.Options{Instances: 1, Logger: quiet(t)})
		a, b := read(t, m), read(t, other)
		if len(a.Env) != 0 {
			t.Errorf("got environment %q, want none", a.Env)
		}
		if !strings.HasPrefix(a.Now, "2022-01-01") {
			t.Errorf("got time %s, want the fixed 2022-01-01", a.Now)
		}
		if a.Rand != b.Rand {
			t.Errorf("two fresh instances drew %s and %s, want the same deterministic bytes", a.Rand, b.Rand)
		}
	})

	t.Run("grants", func(t *testing.T) {
		opts := wasm.Options{
			Instances: 1,
			Logger:    quiet(t),
			Env:       map[string]string{"LABELS": "a,b"},
			Clock:     true,
			Random:    true,
			Mounts:    []wasm.Mount{{HostDir: dir, GuestPath: "/data"}},
		}
		g1, g2 := newModule(t, "misbehave", opts), newModule(t, "misbehave", opts)
		a, b := read(t, g1), read(t, g2)
		if len(a.Env) != 1 || a.Env[0] != "LABELS=a,b" {
			t.Errorf("got environment %q, want [LABELS=a,b]", a.Env)
		}
		if now := time.Now().UTC().Format("2006-01-02"); !strings.HasPrefix(a.Now, now) {
			t.Errorf("got time %s, want today (%s)", a.Now, now)
		}
		if a.Rand == b.Rand {
			t.Errorf("two instances drew the same bytes %s with Random granted", a.Rand)
		}
		out, err := call(t, g1, "open:/data/secret.txt")
		if err != nil || string(out) != "top secret" {
			t.Errorf("reading a mounted file: got %q, %v", out, err)
		}
		out, err = call(t, g1, "open:/data/../../etc/passwd")
		if err != nil || !bytes.HasPrefix(out, []byte("error: ")) {
			t.Errorf("escaping the mount: got %.60q, %v; want an error", out, err)
		}
	})
}

func TestLog(t *testing.T) {
	var logs testutil.SyncBuffer
	m := newModule(t, "misbehave", wasm.Options{Instances: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if out, err := call(t, m, "log:hello from the guest"); err != nil || string(out) != "logged" {
		t.Fatalf("got %q, %v", out, err)
	}
	for _, want := range []string{"level=WARN", `msg="hello from the guest"`, "stage=preprocess", "wasm=misbehave-"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q does not contain %q", logs.String(), want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	header := []byte("\x00asm\x01\x00\x00\x00")
	// A module with one func () -> () exported under name.
	exporting := func(name string) []byte {
		b := append([]byte{}, header...)
		b = append(b, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00) // type section: () -> ()
		b = append(b, 0x03, 0x02, 0x01, 0x00)             // function section
		b = append(b, 0x07, byte(4+len(name)), 0x01, byte(len(name)))
		b = append(b, name...)
		b = append(b, 0x00, 0x00)                         // export func 0
		b = append(b, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b) // code: empty body
		return b
	}
	tests := []struct {
		name string
		path string
		opts wasm.Options
		want []string
	}{
		{name: "missing file", path: filepath.Join(dir, "nope.wasm"), want: []string{"reading wasm module"}},
		{name: "not wasm", path: write("text.wasm", []byte("hello")), want: []string{"compiling wasm module"}},
		{name: "empty module", path: write("empty.wasm", header), want: []string{"no cortex_abi_v1 export"}},
		{name: "command", path: write("cmd.wasm", exporting("_start")), want: []string{"WASI command", "-buildmode=c-shared"}},
		{name: "marker only", path: write("marker.wasm", exporting("cortex_abi_v1")),
			want: []string{"missing export alloc", "exports neither preprocess nor postprocess", "missing export memory"}},
		{name: "options", path: write("opts.wasm", header),
			opts: wasm.Options{Instances: -1, MemoryLimitPages: 100, RecycleAbovePages: 200, Mounts: []wasm.Mount{{HostDir: dir, GuestPath: "data"}}},
			want: []string{"Instances: -1 is negative", "RecycleAbovePages: 200 is above MemoryLimitPages (100)", `Mounts[0].GuestPath: "data" must be an absolute path`}},
		// wazero would make room for 2^28 imports (28 GB) before reading one.
		{name: "count larger than its section", path: write("bomb.wasm", append(header, 0x02, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f)),
			want: []string{"compiling wasm module", "section 2: a count of 4294967295 in 0 bytes"}},
		{name: "tables over the memory limit", path: rawGuest{tables: []byte{0x01, 0x70, 0x01, 0x01, 0x80, 0x80, 0x80, 0x40}}.write(t),
			want: []string{"its tables take 1073741888 bytes at their maximum size (8 bytes an element) and its call stack 8 MiB: nothing is left of the memory limit of 128 MiB"}},
		{name: "table without a maximum over the memory limit", path: rawGuest{tables: []byte{0x01, 0x70, 0x00, 0x80, 0x80, 0x80, 0x08}}.write(t),
			want: []string{"its tables take 134217792 bytes at their maximum size"}},
		{name: "memory limit below the guest's minimum", path: guest(t, "echo"), opts: wasm.Options{MemoryLimitPages: 4},
			want: []string{"memory needs 40 pages at start, over the 3 pages the limit of 4 leaves it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = quiet(t)
			tt.opts.CacheDir = testutil.CacheDir("wazero")
			m, err := wasm.New(context.Background(), tt.path, tt.opts)
			if err == nil {
				m.Close(context.Background())
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestClose(t *testing.T) {
	m := newModule(t, "echo", wasm.Options{Instances: 2, Logger: quiet(t)})
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := m.Preprocess(context.Background(), []byte("x"))
	wantError(t, err, 503, "wasm stage preprocess: module closed", wasm.ErrClosed)
	if s := m.Stats(); s.Live != 0 {
		t.Errorf("got %d live instances after Close, want 0", s.Live)
	}
}

func TestBuildGoReportsCompilerErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module broken\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644)
	err := wasm.BuildGo(context.Background(), dir, filepath.Join(dir, "out.wasm"))
	if err == nil || !strings.Contains(err.Error(), "undefined: undefinedThing") {
		t.Errorf("got %v, want the compiler's message", err)
	}
}
