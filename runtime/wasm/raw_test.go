package wasm_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/runtime/wasm"
)

// rawGuest assembles a stage module byte by byte, for hostile guests that
// no toolchain emits (table.grow past any sense, runaway recursion, loops
// without calls). Its layout:
//
//	types    0 () -> ()   1 (i32) -> (i32)   2 (i32 i32) -> (i64)
//	         3 (i32 i32 i32) -> ()   then extra
//	funcs    0 cortex.fail  1 cortex.log  (imports)
//	         2 cortex_abi_v1  3 alloc (always 1024)  4 preprocess
//	         5... funcs
//	memory   pages, no maximum, exported
//	exports  cortex_abi_v1, alloc, preprocess, memory, then exports
//
// preprocess gets locals 0 (ptr) and 1 (len), then its own; it reads the
// input at local 0 and returns an i64 (ptr<<32 | len).
type rawGuest struct {
	extraTypes []rawType
	locals     []byte // preprocess's local declarations, encoded without the count
	nLocals    int    // how many declarations locals holds
	pre        []byte // preprocess's code, without the final end
	funcs      []rawFunc
	tables     []byte // the table section's body, or nil
	pages      uint32 // initial memory pages; 0 means 1
	data       []rawData
	exports    []rawExport // more functions to export
}

type rawExport struct {
	name string
	fn   int
}

type rawType struct{ params, results []byte }

type rawFunc struct {
	typ     uint32
	locals  []byte
	nLocals int
	code    []byte
}

type rawData struct {
	at    uint32
	bytes string
}

const (
	i32 = 0x7f
	i64 = 0x7e
)

func (g rawGuest) bytes() []byte {
	types := append([]rawType{
		{nil, nil},
		{[]byte{i32}, []byte{i32}},
		{[]byte{i32, i32}, []byte{i64}},
		{[]byte{i32, i32, i32}, nil},
	}, g.extraTypes...)
	var typeSec []byte
	typeSec = uleb(typeSec, len(types))
	for _, t := range types {
		typeSec = append(typeSec, 0x60)
		typeSec = append(uleb(typeSec, len(t.params)), t.params...)
		typeSec = append(uleb(typeSec, len(t.results)), t.results...)
	}
	importSec := uleb(nil, 2)
	for _, name := range []string{"fail", "log"} {
		importSec = str(str(importSec, "cortex"), name)
		importSec = append(importSec, 0x00, 0x03)
	}
	funcs := append([]rawFunc{
		{typ: 0},
		{typ: 1, code: []byte{0x41, 0x80, 0x08}}, // i32.const 1024
		{typ: 2, locals: g.locals, nLocals: g.nLocals, code: g.pre},
	}, g.funcs...)
	funcSec := uleb(nil, len(funcs))
	codeSec := uleb(nil, len(funcs))
	for _, f := range funcs {
		funcSec = uleb(funcSec, int(f.typ))
		body := append(uleb(nil, f.nLocals), f.locals...)
		body = append(append(body, f.code...), 0x0b)
		codeSec = append(uleb(codeSec, len(body)), body...)
	}
	pages := max(g.pages, 1)
	memSec := uleb(append(uleb(nil, 1), 0x00), int(pages))
	exportSec := uleb(nil, 4+len(g.exports))
	for i, name := range []string{"cortex_abi_v1", "alloc", "preprocess"} {
		exportSec = uleb(append(str(exportSec, name), 0x00), 2+i)
	}
	exportSec = append(str(exportSec, "memory"), 0x02, 0x00)
	for _, e := range g.exports {
		exportSec = uleb(append(str(exportSec, e.name), 0x00), e.fn)
	}

	b := []byte("\x00asm\x01\x00\x00\x00")
	b = section(b, 1, typeSec)
	b = section(b, 2, importSec)
	b = section(b, 3, funcSec)
	if g.tables != nil {
		b = section(b, 4, g.tables)
	}
	b = section(b, 5, memSec)
	b = section(b, 7, exportSec)
	b = section(b, 10, codeSec)
	if len(g.data) > 0 {
		dataSec := uleb(nil, len(g.data))
		for _, d := range g.data {
			dataSec = append(dataSec, 0x00, 0x41)
			dataSec = sleb(dataSec, int64(d.at))
			dataSec = str(append(dataSec, 0x0b), d.bytes)
		}
		b = section(b, 11, dataSec)
	}
	return b
}

// write puts the module in a temporary file and returns its path.
func (g rawGuest) write(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "raw.wasm")
	if err := os.WriteFile(p, g.bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func section(b []byte, id byte, body []byte) []byte {
	return append(uleb(append(b, id), len(body)), body...)
}

func uleb(b []byte, v int) []byte { return binary.AppendUvarint(b, uint64(v)) }

// sleb appends a signed LEB128, with the encoder the rewrite uses (what
// it writes, wazero checks).
func sleb(b []byte, v int64) []byte { return wasm.AppendS33(b, v) }

func str(b []byte, s string) []byte { return append(uleb(b, len(s)), s...) }

// Code fragments.
var (
	// argU32 pushes the little-endian u32 at input offset 1.
	argU32 = []byte{0x20, 0x00, 0x28, 0x00, 0x01} // local.get 0; i32.load align=1 offset=1
	// opByte pushes the input's first byte.
	opByte = []byte{0x20, 0x00, 0x2d, 0x00, 0x00} // local.get 0; i32.load8_u
)

func i32Const(v int64) []byte { return sleb([]byte{0x41}, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// echoFirst makes preprocess return its input when it starts with 'e': the
// request a test sends to see that a module still serves.
var echoFirst = cat(opByte, i32Const('e'), []byte{
	0x46, 0x04, 0x40, // i32.eq if
	0x20, 0x00, 0xad, 0x42, 0x20, 0x86, // ptr as i64 << 32
	0x20, 0x01, 0xad, 0x84, // | len
	0x0f, 0x0b, // return end
})

// tableGuest has a funcref table of one element and no maximum. Its
// preprocess does table.grow(ref.func, n) for input 'g' n (and then fails
// the call with 422, keeping its instance, as a guest may) or 'G' n (and
// returns table.grow's result, 4 bytes).
func tableGuest() rawGuest {
	return rawGuest{
		tables:  []byte{0x01, 0x70, 0x00, 0x01}, // funcref, min 1, no max
		locals:  []byte{0x01, i32},
		nLocals: 1,
		pre: cat(echoFirst,
			[]byte{0xd2, 0x04}, argU32, []byte{0xfc, 0x0f, 0x00, 0x21, 0x02}, // ref.func 4; table.grow 0; local.set 2
			i32Const(0), []byte{0x20, 0x02, 0x36, 0x02, 0x00}, // store the result at 0
			opByte, i32Const('g'), []byte{0x46, 0x04, 0x40},
			i32Const(422), i32Const(16), i32Const(11), []byte{0x10, 0x00, 0x0b}, // cortex.fail(422, "table grown")
			[]byte{0x42, 0x04}), // return 4 bytes at 0
		data: []rawData{{16, "table grown"}},
	}
}

// recursionGuest's preprocess calls a function n deep for input 'r' n and
// returns its result, 4 bytes.
func recursionGuest() rawGuest {
	return rawGuest{
		pre: cat(echoFirst, i32Const(0), argU32, []byte{0x10, 0x05, 0x36, 0x02, 0x00, 0x42, 0x04}),
		funcs: []rawFunc{{typ: 1, code: []byte{ // f(n) = n == 0 ? 0 : f(n-1) + 1
			0x20, 0x00, 0x45, 0x04, i32, 0x41, 0x00, 0x05,
			0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x05, 0x41, 0x01, 0x6a, 0x0b,
		}}},
	}
}

// loopGuest's preprocess counts to n for input 'l' n, in a loop that
// calls nothing.
func loopGuest() rawGuest {
	return rawGuest{
		locals:  []byte{0x01, i32},
		nLocals: 1,
		pre: cat(echoFirst, []byte{0x02, 0x40, 0x03, 0x40, 0x20, 0x02}, argU32, []byte{
			0x4f, 0x0d, 0x01, // i32.ge_u br_if 1
			0x20, 0x02, 0x41, 0x01, 0x6a, 0x21, 0x02, // i += 1
			0x0c, 0x00, 0x0b, 0x0b, // br 0 end end
			0x42, 0x00,
		}),
	}
}

// logGuest's preprocess calls cortex.log n times for input 'L' n size,
// with a size-byte message of x.
func logGuest() rawGuest {
	return rawGuest{
		locals:  []byte{0x01, i32},
		nLocals: 1,
		pre: cat(echoFirst, []byte{0x02, 0x40, 0x03, 0x40, 0x20, 0x02}, argU32,
			[]byte{0x4f, 0x0d, 0x01},    // i32.ge_u br_if 1
			i32Const(4), i32Const(8192), // level warn, message at 8192
			[]byte{0x20, 0x00, 0x28, 0x00, 0x05}, // size: the u32 at input offset 5
			[]byte{
				0x10, 0x01, // cortex.log
				0x20, 0x02, 0x41, 0x01, 0x6a, 0x21, 0x02, // i += 1
				0x0c, 0x00, 0x0b, 0x0b, // br 0 end end
				0x42, 0x00,
			}),
		data: []rawData{{8192, strings.Repeat("x", 4096)}},
	}
}

// initLogGuest is logGuest with an _initialize that calls cortex.log n
// times with a one-byte message.
func initLogGuest(n int) rawGuest {
	g := logGuest()
	g.funcs = append(g.funcs, rawFunc{typ: 0, locals: []byte{0x01, i32}, nLocals: 1, code: cat(
		[]byte{0x02, 0x40, 0x03, 0x40, 0x20, 0x00}, i32Const(int64(n)), []byte{0x4f, 0x0d, 0x01}, // i >= n br_if 1
		i32Const(4), i32Const(8192), i32Const(1), []byte{0x10, 0x01}, // cortex.log(warn, "x")
		[]byte{0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00, 0x0c, 0x00, 0x0b, 0x0b}, // i += 1 br 0 end end
	)})
	g.exports = []rawExport{{"_initialize", 5}}
	return g
}

// multiValueGuest's preprocess returns a + b, 4 bytes, for input 'r' n,
// where f(n) returns (a, b): (7, 8) by return for 0, (1, 2) by a branch
// to its own label for 1, (n, n) by its end otherwise.
func multiValueGuest() rawGuest {
	return rawGuest{
		extraTypes: []rawType{{[]byte{i32}, []byte{i32, i32}}}, // type 4
		pre:        cat(i32Const(0), argU32, []byte{0x10, 0x05, 0x6a, 0x36, 0x02, 0x00, 0x42, 0x04}),
		funcs: []rawFunc{{typ: 4, code: cat(
			[]byte{0x20, 0x00, 0x45, 0x04, 0x40}, i32Const(7), i32Const(8), []byte{0x0f, 0x0b},
			[]byte{0x20, 0x00, 0x41, 0x01, 0x46, 0x04, 0x40}, i32Const(1), i32Const(2), []byte{0x0c, 0x01, 0x0b},
			[]byte{0x20, 0x00, 0x20, 0x00},
		)}},
	}
}

// binaryRecursionGuest's preprocess calls f(n) for input 'b' n, where
// f(n){ if n { f(n-1); f(n-1) } }: 2^(n+1)-1 calls at a depth of n, and
// no loop anywhere. It returns nothing.
func binaryRecursionGuest() rawGuest {
	fn := []byte{0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x05} // f(n-1)
	return rawGuest{
		extraTypes: []rawType{{[]byte{i32}, nil}}, // type 4
		pre:        cat(echoFirst, argU32, []byte{0x10, 0x05, 0x42, 0x00}),
		funcs: []rawFunc{{typ: 4, code: cat(
			[]byte{0x20, 0x00, 0x04, 0x40}, // local.get 0 if
			fn, fn,
			[]byte{0x0b}, // end
		)}},
	}
}

// multiValueFrameGuest's preprocess calls f(n) for input 'm' n and returns
// its result, 4 bytes. f makes a frame far larger than its instructions:
// it calls g, which returns 1000 values, 100 times, then f(n-1), and only
// then hands the 100000 values, kept across that call, to h, 1000 at a
// time. About 200 instructions hold 800 KB of values.
func multiValueFrameGuest() rawGuest {
	const values, calls = 1000, 100
	many := bytes.Repeat([]byte{i32}, values)
	return rawGuest{
		extraTypes: []rawType{{nil, many}, {many, nil}}, // types 4 () -> 1000 i32, 5 1000 i32 -> ()
		pre:        cat(echoFirst, i32Const(0), argU32, []byte{0x10, 0x05, 0x36, 0x02, 0x00, 0x42, 0x04}),
		funcs: []rawFunc{
			{typ: 1, code: cat( // 5: f
				[]byte{0x20, 0x00, 0x45, 0x04, 0x40, 0x41, 0x00, 0x0f, 0x0b}, // if n == 0 { return 0 }
				bytes.Repeat([]byte{0x10, 0x06}, calls),                      // call g
				[]byte{0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x05, 0x1a},       // f(n-1) drop
				bytes.Repeat([]byte{0x10, 0x07}, calls),                      // call h
				[]byte{0x20, 0x00},                                           // n
			)},
			{typ: 4, code: bytes.Repeat([]byte{0x41, 0x00}, values)}, // 6: g
			{typ: 5}, // 7: h
		},
	}
}
