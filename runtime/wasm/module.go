package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// stage is preprocess or postprocess.
type stage int

const (
	stagePre stage = iota
	stagePost
)

func (s stage) String() string {
	if s == stagePre {
		return "preprocess"
	}
	return "postprocess"
}

// Export and import names of ABI v1 (ABI.md).
const (
	exportMarker = "cortex_abi_v1"
	exportMemory = "memory"
	exportAlloc  = "alloc"
	exportPre    = "preprocess"
	exportPost   = "postprocess"
	exportStages = "cortex_stages"
	exportInit   = "_initialize"
	exportStart  = "_start"
	hostModule   = "cortex"
)

// replaceTimeout bounds the instantiation of a replacement instance (its
// _initialize may be as hostile as any call).
const replaceTimeout = time.Minute

// DiscardReason says why an instance was thrown away.
type DiscardReason string

// The reasons an instance is discarded.
const (
	DiscardTrap        DiscardReason = "trap"         // trapped or exited
	DiscardDeadline    DiscardReason = "deadline"     // stopped by its deadline
	DiscardCanceled    DiscardReason = "canceled"     // stopped by its context
	DiscardMemoryLimit DiscardReason = "memory_limit" // tried to grow past the limit
	DiscardStackLimit  DiscardReason = "stack_limit"  // its call stack passed its share of the memory limit
	DiscardBadOutput   DiscardReason = "bad_output"   // returned an invalid pointer or length
	DiscardRecycle     DiscardReason = "recycle"      // grew past RecycleAbovePages, or its stack past half its share
)

var discardReasons = [...]DiscardReason{DiscardTrap, DiscardDeadline, DiscardCanceled, DiscardMemoryLimit, DiscardStackLimit, DiscardBadOutput, DiscardRecycle}

// Stats is a snapshot of a Module's pool, for metrics.
type Stats struct {
	// Size is the configured pool size (Options.Instances).
	Size int
	// Live is how many instances exist now, busy or idle. It dips below
	// Size while discarded instances are being replaced.
	Live int
	// Started counts instantiations, including the ones New warmed.
	Started uint64
	// Discards counts discarded instances by reason.
	Discards map[DiscardReason]uint64
	// LogDropped and LogDroppedBytes count the cortex.log lines, and their
	// bytes, dropped by the log limits (see the package doc).
	LogDropped, LogDroppedBytes uint64
}

// Module is one compiled WebAssembly stage module and its pool of
// initialised instances. Its methods may be called from many goroutines;
// an instance serves one call at a time.
type Module struct {
	name     string // base name of the .wasm file, for messages and logs
	opts     Options
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	base     wazero.ModuleConfig
	log      *slog.Logger
	has      [2]bool // stage exported (and registered, per cortex_stages)
	logs     logLimiter

	// memoryPages is what Options.MemoryLimitPages leaves linear memory
	// once the tables (at their maximum) and the call stack have their
	// shares; stackLimit is the stack's share, the frame estimate past
	// which a call traps; highGlobal indexes the global that keeps the
	// stack's high-water mark, -1 for none. See bound.go.
	memoryPages uint32
	stackLimit  uint32
	highGlobal  int

	// idle holds the instances ready for a call; a nil entry is an empty
	// slot whose instance could not be replaced and is instantiated by the
	// next call that takes it. Entries are conserved: len(idle) plus the
	// busy instances is always Options.Instances.
	idle chan *instance
	// byModule finds the instance a host function was called from.
	byModule sync.Map // api.Module -> *instance

	mu      sync.Mutex
	closed  bool
	done    chan struct{} // closed by Close
	replace sync.WaitGroup

	live     atomic.Int64
	started  atomic.Uint64
	discards [len(discardReasons)]atomic.Uint64
}

// New compiles the module at wasmPath (or takes it from the compilation
// cache), checks that it meets ABI v1 and instantiates Options.Instances
// instances, running each one's _initialize. ctx bounds all of that.
func New(ctx context.Context, wasmPath string, opts Options) (*Module, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(wasmPath)
	if err != nil {
		return nil, fmt.Errorf("reading wasm module: %w", err)
	}
	cache, err := compilationCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	m := &Module{
		name: filepath.Base(wasmPath),
		opts: opts,
		log:  opts.Logger,
		idle: make(chan *instance, opts.Instances),
		done: make(chan struct{}),
	}
	m.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCloseOnContextDone(!opts.Uninterruptible). // lets a deadline stop a runaway guest
		WithCompilationCache(cache))
	if err := m.init(ctx, wasmPath, bin); err != nil {
		m.rt.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return m, nil
}

func (m *Module) init(ctx context.Context, wasmPath string, bin []byte) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, m.rt); err != nil {
		return fmt.Errorf("wasm: instantiating WASI: %w", err)
	}
	if err := m.instantiateHost(ctx); err != nil {
		return err
	}
	compiled, err := m.compileBounded(ctx, wasmPath, bin)
	if err != nil {
		return err
	}
	m.compiled = compiled
	if err := m.checkABI(); err != nil {
		return fmt.Errorf("wasm module %s: %w", wasmPath, err)
	}
	m.base = m.moduleConfig()

	// Warm the whole pool now, a few at a time.
	insts := make([]*instance, m.opts.Instances)
	errs := make([]error, m.opts.Instances)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range insts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			insts[i], errs[i] = m.instantiate(ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("wasm module %s: %w", wasmPath, err)
	}
	if len(insts) > 0 {
		if err := m.readStages(ctx, insts[0]); err != nil {
			return fmt.Errorf("wasm module %s: %w", wasmPath, err)
		}
	}
	for _, inst := range insts {
		m.idle <- inst
	}
	return nil
}

// compileBounded compiles the module with its limits put into it (see
// bound.go) and takes the tables' and the stack's shares out of the memory
// limit.
func (m *Module) compileBounded(ctx context.Context, wasmPath string, bin []byte) (wazero.CompiledModule, error) {
	limit := uint64(m.opts.MemoryLimitPages) * pageSize
	m.stackLimit = uint32(min(limit/stackShare, math.MaxInt32))
	b, err := bound(bin, boundConfig{stackLimit: m.stackLimit, yield: m.opts.Uninterruptible, entryLoop: !m.opts.Uninterruptible})
	if err != nil {
		// Not handed to wazero: it may be a binary that makes wazero
		// allocate without bound.
		return nil, fmt.Errorf("compiling wasm module %s: %w", wasmPath, err)
	}
	reserved := b.tableBytes + uint64(m.stackLimit)
	if reserved >= limit {
		return nil, fmt.Errorf("wasm module %s: its tables take %s at their maximum size (%d bytes an element) and its call stack %s: nothing is left of the memory limit of %s",
			wasmPath, formatBytes(b.tableBytes), tableElemBytes, formatBytes(uint64(m.stackLimit)), formatBytes(limit))
	}
	m.memoryPages = uint32((limit - reserved) / pageSize)
	m.highGlobal = -1
	if b.hasStack {
		m.highGlobal = int(b.highGlobal)
	}
	compiled, err := m.rt.CompileModule(ctx, b.bin)
	if err != nil {
		// wazero explains a module it refuses better from the original
		// (offsets in its messages hold); if it takes the original, the
		// rewriting failed.
		if _, cerr := m.rt.CompileModule(ctx, bin); cerr != nil {
			return nil, fmt.Errorf("compiling wasm module %s: %w", wasmPath, cerr)
		}
		return nil, fmt.Errorf("wasm module %s: putting its limits into it: %w", wasmPath, err)
	}
	return compiled, nil
}

// checkABI refuses a module that does not meet ABI v1, naming what is
// missing, before anything is instantiated.
func (m *Module) checkABI() error {
	exports := m.compiled.ExportedFunctions()
	if _, ok := exports[exportMarker]; !ok {
		if _, isCommand := exports[exportStart]; isCommand {
			return fmt.Errorf("not a cortex stage: it is a WASI command (exports %s, not %s); build a Go guest with -buildmode=c-shared and functions/wasmguest", exportStart, exportMarker)
		}
		return fmt.Errorf("not a cortex ABI v1 module: no %s export (see runtime/wasm/ABI.md)", exportMarker)
	}
	var errs []error
	want := func(name string, params, results []api.ValueType, required bool) bool {
		fn, ok := exports[name]
		if !ok {
			if required {
				errs = append(errs, fmt.Errorf("missing export %s", name))
			}
			return false
		}
		if !sameTypes(fn.ParamTypes(), params) || !sameTypes(fn.ResultTypes(), results) {
			errs = append(errs, fmt.Errorf("export %s has type %s, want %s", name,
				signature(fn.ParamTypes(), fn.ResultTypes()), signature(params, results)))
			return false
		}
		return true
	}
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	want(exportAlloc, []api.ValueType{i32}, []api.ValueType{i32}, true)
	m.has[stagePre] = want(exportPre, []api.ValueType{i32, i32}, []api.ValueType{i64}, false)
	m.has[stagePost] = want(exportPost, []api.ValueType{i32, i32}, []api.ValueType{i64}, false)
	want(exportStages, nil, []api.ValueType{i32}, false)
	_, hasPre := exports[exportPre]
	_, hasPost := exports[exportPost]
	if !hasPre && !hasPost {
		errs = append(errs, fmt.Errorf("exports neither %s nor %s", exportPre, exportPost))
	}
	mem, ok := m.compiled.ExportedMemories()[exportMemory]
	if !ok {
		errs = append(errs, fmt.Errorf("missing export %s (a linear memory)", exportMemory))
	} else if mem.Min() > m.memoryPages {
		errs = append(errs, fmt.Errorf("memory needs %d pages at start, over the %d pages the limit of %d leaves it once tables and call stack have their %s",
			mem.Min(), m.memoryPages, m.opts.MemoryLimitPages, formatBytes(uint64(m.opts.MemoryLimitPages)*pageSize-uint64(m.memoryPages)*pageSize)))
	}
	if len(m.compiled.ImportedMemories()) > 0 {
		errs = append(errs, errors.New("imports a memory; a stage must define and export its own"))
	}
	for _, fn := range m.compiled.ImportedFunctions() {
		mod, name, _ := fn.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
		case hostModule:
			want, ok := hostFuncs[name]
			if !ok {
				errs = append(errs, fmt.Errorf("imports %s.%s, which the host does not provide (it provides fail and log)", mod, name))
			} else if !sameTypes(fn.ParamTypes(), want) || len(fn.ResultTypes()) != 0 {
				errs = append(errs, fmt.Errorf("imports %s.%s with type %s, want %s", mod, name,
					signature(fn.ParamTypes(), fn.ResultTypes()), signature(want, nil)))
			}
		default:
			errs = append(errs, fmt.Errorf("imports %s.%s: only %s and %s imports are provided", mod, name, wasi_snapshot_preview1.ModuleName, hostModule))
		}
	}
	return errors.Join(errs...)
}

// readStages asks a guest that exports cortex_stages which stages it
// registered (the Go guest package exports both and registers what the
// author wrote).
func (m *Module) readStages(ctx context.Context, inst *instance) error {
	fn := inst.mod.ExportedFunction(exportStages)
	if fn == nil {
		return nil
	}
	res, err := fn.Call(ctx)
	if err != nil {
		return fmt.Errorf("calling %s: %w", exportStages, err)
	}
	mask := uint32(res[0])
	m.has[stagePre] = m.has[stagePre] && mask&1 != 0
	m.has[stagePost] = m.has[stagePost] && mask&2 != 0
	if !m.has[stagePre] && !m.has[stagePost] {
		return errors.New("the guest registered no stage (call wasmguest.Preprocess or Postprocess from an init function)")
	}
	return nil
}

func (m *Module) moduleConfig() wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so many instances can coexist
		WithStartFunctions(exportInit)
	o := m.opts
	for k, v := range o.Env {
		cfg = cfg.WithEnv(k, v)
	}
	if o.Clock {
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	if o.Random {
		cfg = cfg.WithRandSource(cryptoRand{})
	}
	if len(o.Mounts) > 0 {
		fs := wazero.NewFSConfig()
		for _, mt := range o.Mounts {
			fs = fs.WithReadOnlyDirMount(mt.HostDir, mt.GuestPath)
		}
		cfg = cfg.WithFSConfig(fs)
	}
	return cfg
}

// HasPreprocess reports whether the module provides a preprocess stage.
func (m *Module) HasPreprocess() bool { return m.has[stagePre] }

// HasPostprocess reports whether the module provides a postprocess stage.
func (m *Module) HasPostprocess() bool { return m.has[stagePost] }

// Preprocess runs the guest's preprocess stage on in and returns a copy of
// its output. ctx (and Options.Timeout) bounds the wait for an instance and
// the call. Every error is a *functions.Error; see the package doc for the
// statuses.
func (m *Module) Preprocess(ctx context.Context, in []byte) ([]byte, error) {
	return m.run(ctx, stagePre, in)
}

// Postprocess runs the guest's postprocess stage; see Preprocess.
func (m *Module) Postprocess(ctx context.Context, in []byte) ([]byte, error) {
	return m.run(ctx, stagePost, in)
}

func (m *Module) run(ctx context.Context, st stage, in []byte) ([]byte, error) {
	if !m.has[st] {
		return nil, stageError(http.StatusInternalServerError,
			fmt.Sprintf("wasm module %s has no %s stage", m.name, st), ErrNoStage)
	}
	// An input that cannot fit the guest's linear memory (what the limit
	// leaves it once the call stack and the tables have their shares), or
	// a 32-bit length, is refused before any instance is touched.
	if limit := uint64(m.memoryPages) * pageSize; uint64(len(in)) > min(limit, math.MaxUint32-inputBufferMin) {
		return nil, stageError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("wasm stage %s: input of %d bytes does not fit its memory limit of %s (%d bytes of linear memory once its call stack and tables have their share)",
				st, len(in), formatBytes(uint64(m.opts.MemoryLimitPages)*pageSize), limit),
			ErrMemoryLimit)
	}
	if m.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.opts.Timeout)
		defer cancel()
	}
	inst, err := m.acquire(ctx, st)
	if err != nil {
		return nil, err
	}
	out, reason, err := inst.call(ctx, m, st, in)
	m.logs.endCall(m, inst)
	if reason != "" {
		m.discard(inst, reason, err)
	} else {
		m.idle <- inst
	}
	return out, err
}

// acquire takes an idle instance, instantiating one in an empty slot.
func (m *Module) acquire(ctx context.Context, st stage) (*instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(st, err)
	}
	select {
	case <-m.done:
		return nil, m.closedError(st)
	default:
	}
	var inst *instance
	select {
	case inst = <-m.idle:
	default:
		select {
		case inst = <-m.idle:
		case <-ctx.Done():
			return nil, ctxError(st, ctx.Err())
		case <-m.done:
			return nil, m.closedError(st)
		}
	}
	if inst == nil {
		var err error
		if inst, err = m.instantiate(ctx); err != nil {
			m.idle <- nil
			return nil, stageError(http.StatusInternalServerError,
				fmt.Sprintf("wasm stage %s: no instance available", st), err)
		}
	}
	return inst, nil
}

func (m *Module) closedError(st stage) error {
	return stageError(http.StatusServiceUnavailable, fmt.Sprintf("wasm stage %s: module closed", st), ErrClosed)
}

// discard closes inst and replaces it in the background, so the call that
// failed returns at once and the next one gets a fresh instance.
func (m *Module) discard(inst *instance, reason DiscardReason, cause error) {
	for i, r := range discardReasons {
		if r == reason {
			m.discards[i].Add(1)
		}
	}
	m.close(inst)
	attrs := []any{slog.String("wasm", m.name), slog.String("reason", string(reason))}
	if cause != nil {
		attrs = append(attrs, slog.Any("error", cause))
	}
	if tail := inst.stderr.String(); tail != "" {
		attrs = append(attrs, slog.String("guest_stderr", tail))
	}
	m.log.Warn("wasm instance discarded", attrs...)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		m.idle <- nil
		return
	}
	m.replace.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), replaceTimeout)
		defer cancel()
		fresh, err := m.instantiate(ctx)
		if err != nil {
			m.log.Error("wasm instance could not be replaced; the next call will try again",
				slog.String("wasm", m.name), slog.Any("error", err))
		}
		m.idle <- fresh // nil on error: an empty slot
	})
}

func (m *Module) close(inst *instance) {
	m.byModule.Delete(inst.mod)
	m.live.Add(-1)
	// Closing only releases memory; a module already closed by its
	// context or by proc_exit reports an error we have no use for.
	_ = inst.mod.Close(context.Background())
}

// Stats returns a snapshot of the pool, for metrics.
func (m *Module) Stats() Stats {
	s := Stats{
		Size:     m.opts.Instances,
		Live:     int(m.live.Load()),
		Started:  m.started.Load(),
		Discards: make(map[DiscardReason]uint64, len(discardReasons)),
	}
	for i, r := range discardReasons {
		s.Discards[r] = m.discards[i].Load()
	}
	s.LogDropped, s.LogDroppedBytes = m.logs.dropped.Load(), m.logs.droppedBytes.Load()
	return s
}

// Close waits for replacements under way, then closes every instance and
// the compiled module. Calls still running fail with 503 (ErrClosed) or see
// their instance closed; callers should stop sending calls first (the
// runtime closes stages after the last request has finished).
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	m.mu.Unlock()
	m.replace.Wait()
	m.logs.flush(m)
	for {
		select {
		case inst := <-m.idle:
			if inst != nil {
				m.close(inst)
			}
			continue
		default:
		}
		break
	}
	return m.rt.Close(ctx)
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func signature(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		s := "("
		for i, t := range ts {
			if i > 0 {
				s += ", "
			}
			s += api.ValueTypeName(t)
		}
		return s + ")"
	}
	return name(params) + " -> " + name(results)
}
