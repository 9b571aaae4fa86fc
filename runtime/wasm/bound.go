package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// wazero has no setting for three things a hostile guest can exhaust: the
// size of its tables, the depth of its call stack and the CPU it holds
// without ever leaving native code. So the host puts the limits into the
// module itself: before New compiles a module it rewrites the binary once
// (bound), and every instance carries them.
//
//   - Tables. A table without a maximum gets its initial size as its
//     maximum (table.grow then returns -1, as for any table at its
//     maximum), and the maxima of all tables, at tableElemBytes an element,
//     are taken out of the memory limit. wazero keeps an 8-byte word per
//     element in Go memory and grows a table without any bound of its own.
//   - The call stack. wazero grows each function's native stack by
//     doubling up to ~100 MB before it reports a stack overflow. Every
//     function now adds an estimate of its frame to a global on entry and
//     takes it off on exit; past the stack limit it traps (unreachable).
//     A second global keeps the highest value reached, for the host to
//     count and to recycle an instance whose stack grew large.
//   - Leaving native code. Native code is never preempted by the Go
//     scheduler, and a stop-the-world (every GC cycle starts with one)
//     waits for it. wazero leaves it at a loop header to check for
//     termination (WithCloseOnContextDone, interruptible modules only) and
//     at a call only to grow the stack; a guest that loops, or recurses
//     without a loop (f(n){ if n { f(n-1); f(n-1) } } makes 2^n calls at
//     depth n), would otherwise run past its deadline and stall the whole
//     process. So every function entry gets what a loop header has: in an
//     interruptible module an empty loop (0x03 0x40 0x0b), for which wazero
//     compiles the same termination check (an exit to Go) as for any
//     other (lower.go, OpcodeLoop); in an uninterruptible one a yield, as
//     at every loop header: each counts down a global and every yieldEvery
//     times runs memory.grow 0, which wazero executes in Go, where the
//     goroutine can be preempted. Between two termination checks a guest
//     then runs at most straight through the rest of the bodies of the
//     functions on its stack, which the stack limit bounds.
//
// The frame estimate follows the shape of wazero's frames (its compiler
// gives each spilled SSA value a slot of its own, 8 bytes or 16 for a
// vector, and a function has no more values than its locals, parameters
// and instructions make: one an instruction, but one a result for a call
// and one a parameter and result for a block, loop or if of a type
// index): 8 bytes an instruction (16 a vector instruction), 8 a result of
// every call and a parameter and result of every multi-value block type
// (16 a vector), 16 a parameter, result and local and an argument or
// result of its largest call (the argument area), up to 512 for saved
// registers, and frameBaseBytes for the return address, frame pointer and
// stack check. Compiled guests' real frames are 10-60 times smaller; the
// largest we could construct (200 values live across a call) reached 40%
// of their estimate. Counting every call's results matters: 100 calls of
// 1000 results each, kept across a recursive call, make a frame of 800 KB
// from 200 instructions (TestHostileStack).

const (
	tableElemBytes   = 8       // wazero's Reference is a uintptr
	tableBaseBytes   = 64      // a TableInstance
	frameBaseBytes   = 48      // return address, frame pointer, stack check
	frameSavedBytes  = 512     // at most 32 saved registers of 16 bytes
	stackShare       = 16      // the call stack gets 1/stackShare of the memory limit
	yieldEvery       = 1 << 16 // loop iterations between yields
	maxFrameEstimate = 1 << 30 // keeps the counter from wrapping
	// maxLocals bounds a function's locals, as browsers do: wazero makes
	// room for all of them before reading the function.
	maxLocals = 50000
)

// boundConfig says what bound puts into a module.
type boundConfig struct {
	stackLimit uint32 // frame estimate, in bytes, past which a call traps; at most math.MaxInt32
	yield      bool   // insert yields at loop headers and function entries (uninterruptible)
	entryLoop  bool   // insert an empty loop at function entries, for wazero's termination check (interruptible)
}

// bounded is a rewritten module.
type bounded struct {
	bin []byte
	// tableBytes is what the module's tables may hold at their maxima; the
	// caller takes it out of the memory limit.
	tableBytes uint64
	// depthGlobal and highGlobal index the stack counter and its
	// high-water mark; hasStack is false for a module without functions.
	depthGlobal, highGlobal uint32
	hasStack                bool
}

type section struct {
	id   byte
	body []byte
}

type funcType struct{ params, results []byte }

// bound rewrites a module binary as the comment above describes. It
// refuses, before wazero sees them, binaries it cannot read or that use
// what wazero does not enable, binaries that refer to what the rewrite adds
// (invalid, they would become valid), and counts wazero's decoder
// allocates by that are larger than the bytes that should hold their
// entries: wazero makes room for as many entries as a count says before it
// reads them (a 67-byte module asking for 2^32 imports made it allocate
// 28 GB and killed the process).
func bound(bin []byte, cfg boundConfig) (*bounded, error) {
	const header = "\x00asm\x01\x00\x00\x00"
	if len(bin) < len(header) || string(bin[:len(header)]) != header {
		return nil, errors.New("not a WebAssembly 1.0 binary")
	}
	var secs []section
	for r := (reader{b: bin[len(header):]}); !r.done(); {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		secs = append(secs, section{id, body})
	}

	b := &bounded{}
	var (
		types                 []funcType
		funcTypes             []uint32 // type index of every function, imports first
		importedFuncs         uint32
		importedGlobals       uint32
		definedGlobals        uint32
		hasMemory, hasCode    bool
		typeSec, tableSec, gl = -1, -1, -1
		exports               = -1
	)
	for i, s := range secs {
		if err := checkCounts(s); err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
		r := reader{b: s.body}
		switch s.id {
		case 1:
			typeSec = i
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				if form := r.byte(); form != 0x60 {
					r.fail(fmt.Errorf("type form %#x is not supported", form))
				}
				var t funcType
				t.params = r.valTypes()
				t.results = r.valTypes()
				types = append(types, t)
			}
		case 2:
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				r.bytes(int(r.u32())) // module
				r.bytes(int(r.u32())) // name
				switch kind := r.byte(); kind {
				case 0:
					funcTypes = append(funcTypes, r.u32())
					importedFuncs++
				case 1:
					r.byte() // reference type
					r.limits()
				case 2:
					hasMemory = true
					r.limits()
				case 3:
					r.byte() // value type
					r.byte() // mutability
					importedGlobals++
				default:
					r.fail(fmt.Errorf("import kind %#x is not supported", kind))
				}
			}
		case 3:
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				funcTypes = append(funcTypes, r.u32())
			}
		case 4:
			tableSec = i
		case 5:
			hasMemory = hasMemory || r.u32() > 0
		case 6:
			gl = i
			definedGlobals = r.u32()
		case 7:
			exports = i
		case 10:
			hasCode = true
		}
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	// Nothing may refer to what the rewrite adds: a module that did would
	// be invalid, and the rewrite would make it valid and hand it the
	// stack counters.
	for _, t := range funcTypes {
		if int(t) >= len(types) {
			return nil, fmt.Errorf("function type %d out of range", t)
		}
	}
	globals := importedGlobals + definedGlobals
	if exports >= 0 {
		r := reader{b: secs[exports].body}
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.bytes(int(r.u32()))
			if kind, idx := r.byte(), r.u32(); kind == 3 && idx >= globals {
				r.fail(fmt.Errorf("export of global %d out of range", idx))
			}
		}
		if r.err != nil {
			return nil, fmt.Errorf("export section: %w", r.err)
		}
	}

	if tableSec >= 0 {
		body, n, err := boundTables(secs[tableSec].body)
		if err != nil {
			return nil, fmt.Errorf("table section: %w", err)
		}
		secs[tableSec].body = body
		b.tableBytes = n
	}

	if hasCode {
		b.hasStack = true
		b.depthGlobal = importedGlobals + definedGlobals
		b.highGlobal = b.depthGlobal + 1
		yieldGlobal := b.depthGlobal + 2
		added := 2
		rw := codeRewriter{
			types:     types,
			funcTypes: funcTypes,
			globals:   globals,
			imported:  importedFuncs,
			depth:     b.depthGlobal,
			high:      b.highGlobal,
			limit:     cfg.stackLimit,
			entryLoop: cfg.entryLoop,
		}
		if cfg.yield && hasMemory {
			rw.yield, rw.yieldGlobal = true, yieldGlobal
			added++
		}
		for i, s := range secs {
			if s.id != 10 {
				continue
			}
			body, err := rw.code(s.body)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			secs[i].body = body
		}
		// Multi-value results need a block type of their own.
		if len(rw.extraTypes) > 0 {
			if typeSec < 0 {
				return nil, errors.New("functions without a type section")
			}
			var entries []byte
			for _, t := range rw.extraTypes {
				entries = append(entries, 0x60, 0x00) // () -> results
				entries = appendU32(entries, uint32(len(t.results)))
				entries = append(entries, t.results...)
			}
			secs[typeSec].body = appendVec(secs[typeSec].body, len(rw.extraTypes), entries)
		}
		if gl < 0 { // a global section of none, where it belongs
			gl = len(secs)
			for i, s := range secs {
				if s.id != 0 && s.id != 1 && s.id != 2 && s.id != 3 && s.id != 4 && s.id != 5 && s.id != 13 {
					gl = i
					break
				}
			}
			secs = slices.Insert(secs, gl, section{6, []byte{0}})
		}
		entries := bytes.Repeat([]byte{0x7f, 0x01, 0x41, 0x00, 0x0b}, added) // (mut i32) (i32.const 0)
		secs[gl].body = appendVec(secs[gl].body, added, entries)
	}

	size := len(header)
	for _, s := range secs {
		size += 1 + 5 + len(s.body)
	}
	out := make([]byte, 0, size)
	out = append(out, header...)
	for _, s := range secs {
		// Code offsets have moved: DWARF would point trap traces at the
		// wrong lines (the name section, by function index, still holds).
		if s.id == 0 && strings.HasPrefix(customName(s.body), ".debug_") {
			continue
		}
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.body)))
		out = append(out, s.body...)
	}
	b.bin = out
	return b, nil
}

// boundTables gives every table a maximum and returns the section and what
// the tables may hold.
func boundTables(body []byte) ([]byte, uint64, error) {
	r := reader{b: body}
	n := r.u32()
	out := appendU32(nil, n)
	var total uint64
	for ; n > 0 && r.err == nil; n-- {
		rt := r.byte()
		if rt != 0x70 && rt != 0x6f { // funcref, externref
			r.fail(fmt.Errorf("table type %#x is not supported", rt))
			break
		}
		flags := r.byte()
		if flags > 1 {
			r.fail(fmt.Errorf("table limits %#x are not supported", flags))
			break
		}
		lo := r.u32()
		hi := lo
		if flags == 1 {
			hi = r.u32()
		}
		total += tableBaseBytes + uint64(hi)*tableElemBytes
		out = append(out, rt, 1)
		out = appendU32(out, lo)
		out = appendU32(out, hi)
	}
	if r.err == nil && !r.done() {
		r.fail(errors.New("trailing bytes"))
	}
	return out, total, r.err
}

// codeRewriter instruments function bodies.
type codeRewriter struct {
	types       []funcType
	funcTypes   []uint32
	globals     uint32 // the module's own, imported and defined
	imported    uint32
	depth, high uint32
	limit       uint32
	yield       bool
	yieldGlobal uint32
	entryLoop   bool
	extraTypes  []funcType

	// Reused from function to function.
	scratch []byte
	sites   []site
}

// site is a return or a loop header in a function body.
type site struct {
	at, end int    // the instruction's bytes in the body's code
	depth   uint32 // blocks open around a return
	loop    bool
}

func (rw *codeRewriter) code(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := appendU32(make([]byte, 0, len(body)+len(body)/4), n)
	for i := range n {
		size := r.u32()
		fn := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		idx := rw.imported + i
		if int(idx) >= len(rw.funcTypes) {
			return nil, fmt.Errorf("body %d has no function", i)
		}
		nb, err := rw.function(rw.scratch[:0], fn, rw.types[rw.funcTypes[idx]])
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", idx, err)
		}
		out = appendU32(out, uint32(len(nb)))
		out = append(out, nb...)
		rw.scratch = nb
	}
	if !r.done() {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

// function rewrites one body:
//
//	locals
//	depth += cost; if depth > high { high = depth; if high > limit { unreachable } }
//	loop end             ;; interruptible: wazero's termination check
//	                     ;; (uninterruptible: a yield, as at loop headers)
//	block (result ...)   ;; the original body, its returns now br to here
//	  ...
//	end
//	depth -= cost
//	end
//
// A br to the function's own label lands on the new block, which is where
// the label sits after wrapping, so only return needs to change.
func (rw *codeRewriter) function(out, fn []byte, t funcType) ([]byte, error) {
	r := reader{b: fn}
	var locals uint64
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		locals += uint64(r.u32())
		r.byte()
	}
	if r.err != nil {
		return nil, r.err
	}
	if locals > maxLocals {
		return nil, fmt.Errorf("%d locals, over the limit of %d", locals, maxLocals)
	}
	code := r.b[r.off:]

	// First pass: count instructions and find returns and loop headers.
	var (
		sites    = rw.sites[:0]
		instrs   uint64
		vectors  uint64
		maxCall  uint64
		made     uint64 // bytes of the values calls and block types make beyond one an instruction
		depth    uint32
		finalEnd = -1
	)
	d := reader{b: code}
	for !d.done() && d.err == nil {
		at := d.off
		op := d.byte()
		instrs++
		switch op {
		case 0x02, 0x04: // block, if
			made = min(made+rw.blockTypeIn(&d), maxFrameEstimate)
			depth++
		case 0x03: // loop
			made = min(made+rw.blockTypeIn(&d), maxFrameEstimate)
			depth++
			if rw.yield {
				sites = append(sites, site{at: at, end: d.off, loop: true})
			}
		case 0x0b: // end
			if depth == 0 {
				finalEnd = at
				break
			}
			depth--
		case 0x0f: // return
			sites = append(sites, site{at: at, end: d.off, depth: depth})
		case 0x10: // call
			f := d.u32()
			if int(f) < len(rw.funcTypes) {
				ct := rw.types[rw.funcTypes[f]]
				maxCall = max(maxCall, uint64(len(ct.params)+len(ct.results)))
				made = min(made+valueBytes(ct.results), maxFrameEstimate)
			}
		case 0x11: // call_indirect
			ti := d.u32()
			d.u32()
			if int(ti) >= len(rw.types) {
				d.fail(fmt.Errorf("call_indirect type %d out of range", ti))
				break
			}
			ct := rw.types[ti]
			maxCall = max(maxCall, uint64(len(ct.params)+len(ct.results)))
			made = min(made+valueBytes(ct.results), maxFrameEstimate)
		case 0x23, 0x24: // global.get, global.set
			if g := d.u32(); g >= rw.globals {
				d.fail(fmt.Errorf("global %d out of range", g))
			}
		case 0xfd:
			vectors++
			d.immediates(op)
		default:
			d.immediates(op)
		}
		if finalEnd >= 0 {
			break
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if finalEnd < 0 || d.off != len(code) {
		return nil, errors.New("body does not end with its end")
	}

	cost := frameBaseBytes + min(frameSavedBytes, 16*instrs) + 8*(instrs+vectors) +
		16*(uint64(len(t.params)+len(t.results))+locals+maxCall) + made
	cost = min(cost, maxFrameEstimate)

	rw.sites = sites
	out = append(out, fn[:r.off]...) // locals
	// Prologue.
	out = rw.globalGet(out, rw.depth)
	out = appendI32Const(out, uint32(cost))
	out = append(out, 0x6a) // i32.add
	out = rw.globalSet(out, rw.depth)
	out = rw.globalGet(out, rw.depth)
	out = rw.globalGet(out, rw.high)
	out = append(out, 0x4b, 0x04, 0x40) // i32.gt_u if
	out = rw.globalGet(out, rw.depth)
	out = rw.globalSet(out, rw.high)
	out = rw.globalGet(out, rw.high)
	out = appendI32Const(out, rw.limit)
	out = append(out, 0x4b, 0x04, 0x40, 0x00, 0x0b, 0x0b) // i32.gt_u if unreachable end end
	// Leave native code now and then even without a loop (see the top).
	if rw.yield {
		out = rw.yieldCode(out)
	} else if rw.entryLoop {
		out = append(out, 0x03, 0x40, 0x0b) // loop end
	}
	// The body in a block of the function's results.
	out = append(out, 0x02)
	out = rw.blockType(out, t.results)
	last := 0
	for _, s := range sites {
		out = append(out, code[last:s.end]...)
		last = s.end
		if s.loop {
			out = rw.yieldCode(out)
			continue
		}
		out = out[:len(out)-(s.end-s.at)] // drop the return
		out = append(out, 0x0c)           // br to the block
		out = appendU32(out, s.depth)
	}
	out = append(out, code[last:finalEnd]...)
	out = append(out, 0x0b) // end of the block
	// Epilogue.
	out = rw.globalGet(out, rw.depth)
	out = appendI32Const(out, uint32(cost))
	out = append(out, 0x6b) // i32.sub
	out = rw.globalSet(out, rw.depth)
	return append(out, 0x0b), nil
}

// yieldCode counts a loop iteration or function entry down and, at zero,
// resets the count and leaves native code (memory.grow 0 runs in Go and
// changes nothing).
func (rw *codeRewriter) yieldCode(out []byte) []byte {
	out = rw.globalGet(out, rw.yieldGlobal)
	out = append(out, 0x45, 0x04, 0x40) // i32.eqz if
	out = appendI32Const(out, yieldEvery)
	out = rw.globalSet(out, rw.yieldGlobal)
	out = append(out, 0x41, 0x00, 0x40, 0x00, 0x1a, 0x0b) // i32.const 0 memory.grow drop end
	out = rw.globalGet(out, rw.yieldGlobal)
	out = append(out, 0x41, 0x01, 0x6b) // i32.const 1 i32.sub
	return rw.globalSet(out, rw.yieldGlobal)
}

// blockTypeIn reads a block type: 0x40, a value type or a type index,
// which must be one of the module's own. It returns the bytes of the values
// the block makes beyond the one its instruction counts: the parameters and
// results of a type index (wazero makes block parameters of them), and the
// second half of a vector result.
func (rw *codeRewriter) blockTypeIn(r *reader) uint64 {
	var v int64
	var shift uint
	for i := 0; ; i++ {
		c := r.byte()
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if c&0x40 != 0 && shift < 64 {
				v |= -1 << shift
			}
			break
		}
		if i == 4 || r.err != nil {
			r.fail(errors.New("bad block type"))
			return 0
		}
	}
	switch {
	case v >= int64(len(rw.types)):
		r.fail(fmt.Errorf("block type %d out of range", v))
	case v >= 0:
		t := rw.types[v]
		return valueBytes(t.params) + valueBytes(t.results)
	case v == -5: // v128
		return 8
	}
	return 0
}

// valueBytes is what wazero's frame may hold for values of types ts: a
// spill slot each, 8 bytes or 16 for a vector.
func valueBytes(ts []byte) uint64 {
	n := 8 * uint64(len(ts))
	for _, t := range ts {
		if t == 0x7b {
			n += 8
		}
	}
	return n
}

func (rw *codeRewriter) blockType(out []byte, results []byte) []byte {
	switch len(results) {
	case 0:
		return append(out, 0x40)
	case 1:
		return append(out, results[0])
	}
	for i, t := range rw.types {
		if len(t.params) == 0 && string(t.results) == string(results) {
			return appendS33(out, int64(i))
		}
	}
	for i, t := range rw.extraTypes {
		if string(t.results) == string(results) {
			return appendS33(out, int64(len(rw.types)+i))
		}
	}
	rw.extraTypes = append(rw.extraTypes, funcType{results: results})
	return appendS33(out, int64(len(rw.types)+len(rw.extraTypes)-1))
}

func (rw *codeRewriter) globalGet(out []byte, g uint32) []byte {
	return appendU32(append(out, 0x23), g)
}
func (rw *codeRewriter) globalSet(out []byte, g uint32) []byte {
	return appendU32(append(out, 0x24), g)
}

// immediates skips the immediates of op (any opcode but the ones function
// handles itself), following the binary format of the features wazero
// enables by default: WebAssembly 2.0 (bulk memory, reference types,
// multi-value, non-trapping conversions, sign extension, SIMD).
func (r *reader) immediates(op byte) {
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x1a || op == 0x1b:
		// unreachable, nop, else, drop, select
	case op == 0x0c || op == 0x0d: // br, br_if
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x1c: // select t*
		r.valTypes()
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41:
		r.sleb(32)
	case op == 0x42:
		r.sleb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op >= 0x45 && op <= 0xc4: // numeric, sign extension
	case op == 0xd0: // ref.null
		r.byte()
	case op == 0xd1: // ref.is_null
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7: // trunc_sat
		case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17:
			r.u32()
		default:
			r.fail(fmt.Errorf("instruction 0xfc %d is not supported", sub))
		}
	case op == 0xfd:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93: // loads, store, load_zero
			r.memarg()
		case sub == 12, sub == 13: // v128.const, i8x16.shuffle
			r.bytes(16)
		case sub >= 21 && sub <= 34: // extract_lane, replace_lane
			r.byte()
		case sub >= 84 && sub <= 91: // load_lane, store_lane
			r.memarg()
			r.byte()
		case sub <= 255:
		default:
			r.fail(fmt.Errorf("instruction 0xfd %d is not supported", sub))
		}
	default:
		r.fail(fmt.Errorf("instruction %#x is not supported", op))
	}
}

// reader decodes the binary format; the first error sticks and later
// reads return zero.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.off = len(r.b)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail(errors.New("unexpected end"))
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.off {
		r.fail(errors.New("unexpected end"))
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

// count reads the count of a vector, which cannot be larger than the bytes
// left: every entry takes at least one.
func (r *reader) count() uint32 {
	n := r.u32()
	if left := len(r.b) - r.off; r.err == nil && uint64(n) > uint64(left) {
		r.fail(fmt.Errorf("a count of %d in %d bytes", n, left))
	}
	return n
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b[min(r.off, len(r.b)):])
	if n <= 0 || n > 5 || v > math.MaxUint32 {
		r.fail(errors.New("bad unsigned LEB128"))
		return 0
	}
	r.off += n
	return uint32(v)
}

// sleb skips a signed LEB128 of at most bits bits.
func (r *reader) sleb(bits int) {
	for i := 0; i < (bits+6)/7; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail(errors.New("bad signed LEB128"))
}

func (r *reader) memarg() {
	if align := r.u32(); align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.u32()
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

func (r *reader) valTypes() []byte {
	n := r.u32()
	ts := r.bytes(int(n))
	for _, t := range ts {
		switch t {
		case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		default:
			r.fail(fmt.Errorf("value type %#x is not supported", t))
		}
	}
	return ts
}

// checkCounts reads the counts in a section that bound does not read
// otherwise, and the count of every vector section, and refuses any larger
// than the bytes left to hold its entries (each takes at least one).
func checkCounts(s section) error {
	r := reader{b: s.body}
	switch s.id {
	case 0:
		if string(r.bytes(int(r.u32()))) == "name" {
			r.names()
		}
	case 1, 2, 3, 4, 5, 6, 7, 10, 13:
		r.count()
	case 9:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			flags := r.u32()
			if flags&3 == 2 {
				r.u32() // table
			}
			if flags&1 == 0 {
				r.constExpr() // offset
			}
			if flags&3 != 0 {
				r.byte() // element kind or reference type
			}
			for k := r.count(); k > 0 && r.err == nil; k-- {
				if flags&4 == 0 {
					r.u32()
				} else {
					r.constExpr()
				}
			}
		}
	case 11:
		for n := r.count(); n > 0 && r.err == nil; n-- {
			switch flags := r.u32(); flags {
			case 0:
				r.constExpr()
			case 2:
				r.u32()
				r.constExpr()
			}
			r.bytes(int(r.u32()))
		}
	}
	return r.err
}

// names reads the subsections of the name section that wazero decodes
// (module, function and local names). Each must take exactly the bytes its
// size says: wazero reads them from the section as a stream.
func (r *reader) names() {
	for r.err == nil && !r.done() {
		id := r.byte()
		sub := reader{b: r.bytes(int(r.u32()))}
		switch id {
		case 0:
			sub.bytes(int(sub.u32()))
		case 1:
			for n := sub.count(); n > 0 && sub.err == nil; n-- {
				sub.u32()
				sub.bytes(int(sub.u32()))
			}
		case 2:
			for n := sub.count(); n > 0 && sub.err == nil; n-- {
				sub.u32()
				for k := sub.count(); k > 0 && sub.err == nil; k-- {
					sub.u32()
					sub.bytes(int(sub.u32()))
				}
			}
		default:
			continue
		}
		if sub.err == nil && !sub.done() {
			sub.fail(fmt.Errorf("name subsection %d is longer than its names", id))
		}
		if sub.err != nil {
			r.fail(fmt.Errorf("name subsection %d: %w", id, sub.err))
		}
	}
}

// constExpr skips a constant expression, up to and with its end.
func (r *reader) constExpr() {
	for r.err == nil {
		op := r.byte()
		if op == 0x0b {
			return
		}
		r.immediates(op)
	}
}

func customName(body []byte) string {
	r := reader{b: body}
	return string(r.bytes(int(r.u32())))
}

func appendU32(out []byte, v uint32) []byte { return binary.AppendUvarint(out, uint64(v)) }

func appendS33(out []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func appendI32Const(out []byte, v uint32) []byte {
	return appendS33(append(out, 0x41), int64(int32(v)))
}

// appendVec adds k entries, encoded in entries, to the vector in body.
func appendVec(body []byte, k int, entries []byte) []byte {
	r := reader{b: body}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(body)+len(entries)+5), n+uint32(k))
	return append(append(out, body[r.off:]...), entries...)
}
