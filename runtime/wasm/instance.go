package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

const (
	pageSize = 65536
	// maxMessage bounds a guest's failure message and log line; longer
	// ones are cut.
	maxMessage = 4096
	// stderrKeep is how much of the start and of the end of a guest's
	// stderr is kept to explain a failure (the Go runtime prints panics and
	// fatal errors there).
	stderrKeep = 1024
	// inputBufferMin is the granule of input buffers: the first is
	// allocated at instantiation, so a first call costs what a later one
	// does, and a larger one only when an input does not fit.
	inputBufferMin = 4096
)

// instance is one initialised guest. Only the goroutine that took it from
// the pool touches it (host functions run on that goroutine too).
type instance struct {
	mod              api.Module
	mem              api.Memory
	alloc, pre, post api.Function
	lm               *linearMemory
	high             api.Global // the stack estimate's high-water mark (bound.go); nil for none
	stack            [2]uint64  // params and results of CallWithStack
	// bufPtr and bufSize locate the input buffer alloc returned last; the
	// host owns it until it calls alloc again (ABI.md).
	bufPtr, bufSize uint32
	stderr          stderrBuf

	// cortex.log lines and bytes written and dropped during this call.
	logLines, logBytes   int
	dropLines, dropBytes uint64

	// Set by cortex.fail during a call.
	stage      stage
	failed     bool
	failStatus int
	failMsg    string
}

// instantiate creates and initialises one instance from the compiled
// module.
func (m *Module) instantiate(ctx context.Context) (*instance, error) {
	// What _initialize wrote past the log limits is reported as a call's
	// drops are.
	defer m.logs.report(m, false)
	inst := &instance{}
	limit := uint64(m.memoryPages) * pageSize
	ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(
		func(capacity, _ uint64) experimental.LinearMemory {
			inst.lm = &linearMemory{limit: limit, buf: make([]byte, 0, min(capacity, limit))}
			return inst.lm
		}))
	cfg := m.base.WithStderr(&inst.stderr)
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		// _initialize may have printed why (a Go guest's init panic).
		if tail := inst.stderr.String(); tail != "" {
			err = fmt.Errorf("%w\nguest stderr:\n%s", err, tail)
		}
		return nil, fmt.Errorf("instantiating: %w", err)
	}
	inst.mod = mod
	inst.mem = mod.Memory()
	inst.alloc = mod.ExportedFunction(exportAlloc)
	inst.pre = mod.ExportedFunction(exportPre)
	inst.post = mod.ExportedFunction(exportPost)
	if m.highGlobal >= 0 {
		inst.high = mod.(experimental.InternalModule).Global(m.highGlobal)
	}
	m.byModule.Store(mod, inst)
	m.live.Add(1)
	m.started.Add(1)
	if _, err := inst.grow(ctx, m, stagePre, inputBufferMin); err != nil {
		m.close(inst)
		return nil, fmt.Errorf("allocating the input buffer: %w", err)
	}
	return inst, nil
}

// call runs one stage on inst. A non-empty reason means inst must be
// discarded.
func (inst *instance) call(ctx context.Context, m *Module, st stage, in []byte) (out []byte, reason DiscardReason, err error) {
	inst.stage = st
	inst.failed, inst.failStatus, inst.failMsg = false, 0, ""
	inst.lm.refused = false
	inst.stderr.Reset()

	// Hand the input over, in the guest buffer from alloc (grown only when
	// the input does not fit).
	var ptr uint32
	if len(in) > 0 {
		if len(in) > int(inst.bufSize) {
			if reason, err := inst.grow(ctx, m, st, len(in)); err != nil {
				return nil, reason, err
			}
		}
		ptr = inst.bufPtr
		if !inst.mem.Write(ptr, in) {
			return nil, DiscardBadOutput, stageError(http.StatusInternalServerError,
				fmt.Sprintf("wasm stage %s: the input buffer from alloc (%d bytes at %#x) lies outside the guest's %d bytes of memory", st, inst.bufSize, ptr, inst.mem.Size()),
				ErrBadOutput)
		}
	}
	fn := inst.pre
	if st == stagePost {
		fn = inst.post
	}
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(len(in))
	if err := fn.CallWithStack(ctx, inst.stack[:]); err != nil {
		reason, err = inst.callFailed(ctx, m, st, err)
		return nil, reason, err
	}
	if inst.failed {
		return nil, inst.recycle(m), stageError(inst.failStatus, inst.failMsg, ErrGuest)
	}

	// Validate what the guest returned before reading it.
	ret := inst.stack[0]
	optr, olen := uint32(ret>>32), uint32(ret)
	if uint64(olen) > uint64(m.opts.MaxOutput) {
		return nil, DiscardBadOutput, stageError(http.StatusInternalServerError,
			fmt.Sprintf("wasm stage %s returned %d bytes, over the limit of %d", st, olen, m.opts.MaxOutput),
			ErrBadOutput)
	}
	view, ok := inst.mem.Read(optr, olen)
	if !ok {
		return nil, DiscardBadOutput, stageError(http.StatusInternalServerError,
			fmt.Sprintf("wasm stage %s returned an invalid result: %d bytes at %#x, outside the guest's %d bytes of memory", st, olen, optr, inst.mem.Size()),
			ErrBadOutput)
	}
	// Copy out: the view aliases guest memory, which the next call reuses
	// and a grow may move.
	out = make([]byte, len(view))
	copy(out, view)
	return out, inst.recycle(m), nil
}

// grow replaces the input buffer with one of at least n bytes from the
// guest's alloc.
func (inst *instance) grow(ctx context.Context, m *Module, st stage, n int) (DiscardReason, error) {
	size := uint64(n+inputBufferMin-1) / inputBufferMin * inputBufferMin
	inst.stack[0] = size
	if err := inst.alloc.CallWithStack(ctx, inst.stack[:]); err != nil {
		return inst.callFailed(ctx, m, st, err)
	}
	ptr := uint32(inst.stack[0])
	if uint64(ptr)+size > uint64(inst.mem.Size()) {
		return DiscardBadOutput, stageError(http.StatusInternalServerError,
			fmt.Sprintf("wasm stage %s: alloc(%d) returned %#x, outside the guest's %d bytes of memory", st, size, ptr, inst.mem.Size()),
			ErrBadOutput)
	}
	inst.bufPtr, inst.bufSize = ptr, uint32(size)
	return "", nil
}

// stackHigh is the most the instance's call stack has held, as bound.go
// estimates it. wazero never shrinks a stack, so it still holds about
// that much.
func (inst *instance) stackHigh() uint64 {
	if inst.high == nil {
		return 0
	}
	return uint64(uint32(inst.high.Get()))
}

// recycle says whether inst has grown past Options.RecycleAbovePages
// (memory and stack together) or its stack past half its share.
func (inst *instance) recycle(m *Module) DiscardReason {
	stack := inst.stackHigh()
	if uint64(inst.mem.Size())+stack > uint64(m.opts.RecycleAbovePages)*pageSize || stack > uint64(m.stackLimit)/2 {
		return DiscardRecycle
	}
	return ""
}

// callFailed classifies an error from a guest function: the context
// stopped it, it hit the memory limit, or it trapped or exited.
func (inst *instance) callFailed(ctx context.Context, m *Module, st stage, err error) (DiscardReason, error) {
	var exit *sys.ExitError
	isExit := errors.As(err, &exit)
	switch {
	case isExit && exit.ExitCode() == sys.ExitCodeDeadlineExceeded,
		errors.Is(ctx.Err(), context.DeadlineExceeded):
		return DiscardDeadline, ctxError(st, fmt.Errorf("%w (%w)", context.DeadlineExceeded, err))
	case isExit && exit.ExitCode() == sys.ExitCodeContextCanceled,
		errors.Is(ctx.Err(), context.Canceled):
		return DiscardCanceled, ctxError(st, fmt.Errorf("%w (%w)", context.Canceled, err))
	case inst.stackHigh() > uint64(m.stackLimit):
		return DiscardStackLimit, stageError(http.StatusInternalServerError,
			fmt.Sprintf("wasm stage %s trapped: stack overflow (its call stack is limited to %s, 1/%d of its memory limit)", st, formatBytes(uint64(m.stackLimit)), stackShare),
			fmt.Errorf("%w: %w", ErrTrap, err))
	case inst.lm.refused:
		return DiscardMemoryLimit, stageError(StatusMemoryLimit,
			fmt.Sprintf("wasm stage %s exceeded its memory limit of %s", st, formatBytes(uint64(m.opts.MemoryLimitPages)*pageSize)),
			fmt.Errorf("%w: %w", ErrMemoryLimit, err))
	case isExit:
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return DiscardTrap, m.closedError(st)
		}
		return DiscardTrap, stageError(http.StatusInternalServerError,
			fmt.Sprintf("wasm stage %s trapped: guest exited with code %d", st, exit.ExitCode()),
			fmt.Errorf("%w: %w", ErrTrap, err))
	default:
		return DiscardTrap, stageError(http.StatusInternalServerError,
			fmt.Sprintf("wasm stage %s trapped: %s", st, trapReason(err)),
			fmt.Errorf("%w: %w", ErrTrap, err))
	}
}

// hostFuncs are the cortex.* imports: name -> parameter types (no results).
var hostFuncs = map[string][]api.ValueType{
	"fail": {api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, // (status, msg_ptr, msg_len)
	"log":  {api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, // (level, msg_ptr, msg_len)
}

func (m *Module) instantiateHost(ctx context.Context) error {
	b := m.rt.NewHostModuleBuilder(hostModule)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(m.hostFail), hostFuncs["fail"], nil).
		WithParameterNames("status", "msg_ptr", "msg_len").
		Export("fail")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(m.hostLog), hostFuncs["log"], nil).
		WithParameterNames("level", "msg_ptr", "msg_len").
		Export("log")
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasm: instantiating host module: %w", err)
	}
	return nil
}

// hostFail is cortex.fail(status, msg_ptr, msg_len): the guest fails the
// current call. The first call wins; the guest should return right after.
func (m *Module) hostFail(ctx context.Context, mod api.Module, stack []uint64) {
	v, ok := m.byModule.Load(mod)
	if !ok {
		return // during _initialize: nothing to fail
	}
	inst := v.(*instance)
	if inst.failed {
		return
	}
	status := int(int32(stack[0]))
	msg, ok := readMessage(mod.Memory(), uint32(stack[1]), uint32(stack[2]))
	if !ok {
		msg = fmt.Sprintf("wasm stage %s failed (its failure message lies outside its memory)", inst.stage)
	}
	if status < 400 || status > 599 {
		m.log.Warn("wasm guest failed with an invalid status; using 500",
			slog.String("wasm", m.name), slog.String("stage", inst.stage.String()), slog.Int("status", status))
		status = http.StatusInternalServerError
	}
	inst.failed, inst.failStatus, inst.failMsg = true, status, msg
}

// hostLog is cortex.log(level, msg_ptr, msg_len), level being a slog.Level
// (-4 debug, 0 info, 4 warn, 8 error), within the log limits.
func (m *Module) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level := slog.Level(int32(stack[0]))
	if !m.log.Enabled(ctx, level) {
		return
	}
	var inst *instance
	if v, ok := m.byModule.Load(mod); ok {
		inst = v.(*instance) // nil during _initialize
	}
	if !m.logs.allow(inst, min(uint32(stack[2]), maxMessage)) {
		return
	}
	msg, ok := readMessage(mod.Memory(), uint32(stack[1]), uint32(stack[2]))
	if !ok {
		msg = "(log message outside guest memory)"
	}
	attrs := []slog.Attr{slog.String("wasm", m.name)}
	if inst != nil {
		attrs = append(attrs, slog.String("stage", inst.stage.String()))
	}
	m.log.LogAttrs(ctx, level, msg, attrs...)
}

// readMessage copies a guest string, cut to maxMessage bytes and made valid
// UTF-8.
func readMessage(mem api.Memory, ptr, n uint32) (string, bool) {
	cut := n > maxMessage
	if cut {
		n = maxMessage
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return "", false
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if cut {
		s += "…"
	}
	return s, true
}

// linearMemory backs an instance's memory and enforces
// Options.MemoryLimitPages itself, so that a grow refused by the limit is
// told apart from any other failure.
type linearMemory struct {
	buf     []byte
	limit   uint64
	refused bool // a grow past limit was refused during the current call
}

func (l *linearMemory) Reallocate(size uint64) []byte {
	if size > l.limit {
		l.refused = true
		return nil
	}
	if size <= uint64(cap(l.buf)) {
		// Bytes past len were never written (memory never shrinks), so
		// they are still zero.
		l.buf = l.buf[:size]
		return l.buf
	}
	// Grow geometrically (up to the limit) so a guest growing page by page
	// does not copy its memory every time.
	c := min(max(size, 2*uint64(cap(l.buf))), l.limit)
	nb := make([]byte, size, c)
	copy(nb, l.buf)
	l.buf = nb
	return nb
}

func (l *linearMemory) Free() { l.buf = nil }

// stderrBuf keeps the first and the last stderrKeep bytes a guest wrote
// during one call: the start says what went wrong (a Go guest's "panic:" or
// "fatal error:" line), the end where.
type stderrBuf struct {
	head, tail []byte
	cut        bool // bytes were dropped between head and tail
}

func (b *stderrBuf) Write(p []byte) (int, error) {
	n := len(p)
	if room := stderrKeep - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	if len(p) >= stderrKeep {
		b.cut = b.cut || len(b.tail) > 0 || len(p) > stderrKeep
		b.tail = append(b.tail[:0], p[len(p)-stderrKeep:]...)
	} else if len(p) > 0 {
		if over := len(b.tail) + len(p) - stderrKeep; over > 0 {
			b.cut = true
			b.tail = b.tail[:copy(b.tail, b.tail[over:])]
		}
		b.tail = append(b.tail, p...)
	}
	return n, nil
}

func (b *stderrBuf) String() string {
	s := string(b.head)
	if b.cut {
		s += "\n[...]\n"
	}
	s += string(b.tail)
	return strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
}

func (b *stderrBuf) Reset() { b.head, b.tail, b.cut = b.head[:0], b.tail[:0], false }

// cryptoRand is the Random grant's source.
type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return rand.Read(p) }

// Compilation caches are shared by every Module of the process with the
// same CacheDir, so a module named twice (pre and post in one file, or a
// restart of a pool) compiles once.
var (
	cachesMu sync.Mutex
	caches   = map[string]wazero.CompilationCache{}
)

func compilationCache(dir string) (wazero.CompilationCache, error) {
	cachesMu.Lock()
	defer cachesMu.Unlock()
	if c, ok := caches[dir]; ok {
		return c, nil
	}
	var c wazero.CompilationCache
	if dir == "" {
		c = wazero.NewCompilationCache()
	} else {
		var err error
		if c, err = wazero.NewCompilationCacheWithDir(dir); err != nil {
			return nil, fmt.Errorf("wasm compilation cache %s: %w", dir, err)
		}
	}
	caches[dir] = c
	return c, nil
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// formatBytes writes n in the largest binary unit that divides it.
func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
