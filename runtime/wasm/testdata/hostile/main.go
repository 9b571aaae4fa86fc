// Command hostile speaks the raw ABI without functions/wasmguest and
// returns whatever its input tells it to, to test the host's validation.
// Input: one opcode byte, then little-endian operands (missing bytes read
// as zero):
//
//	'r' u64          return the u64 as preprocess's result
//	'f' i32 u32 u32  call cortex.fail(status, ptr, len), return 0
//	'o' u32          return a valid output of that many bytes
//	'a' u32          make the next alloc return this pointer
//	's' u32          call cortex.fail with a valid message of that many bytes
package main

import (
	"encoding/binary"
	"unsafe"
)

var (
	input, output []byte
	badAlloc      bool
	nextAlloc     uint32
)

//go:wasmimport cortex fail
func fail(status int32, ptr, n uint32)

//go:wasmexport cortex_abi_v1
func abiV1() {}

//go:wasmexport alloc
func alloc(n uint32) uint32 {
	if badAlloc {
		badAlloc = false
		return nextAlloc
	}
	input = make([]byte, n)
	return addr(input)
}

//go:wasmexport preprocess
func preprocess(ptr, n uint32) uint64 {
	if n == 0 || ptr != addr(input) {
		return 0
	}
	in := make([]byte, 16)
	copy(in, input[:n])
	op := in[0]
	a := binary.LittleEndian.Uint32(in[1:])
	b := binary.LittleEndian.Uint32(in[5:])
	c := binary.LittleEndian.Uint32(in[9:])
	switch op {
	case 'r':
		return binary.LittleEndian.Uint64(in[1:])
	case 'f':
		fail(int32(a), b, c)
	case 'o':
		output = make([]byte, a)
		for i := range output {
			output[i] = 'x'
		}
		return uint64(addr(output))<<32 | uint64(a)
	case 'a':
		badAlloc, nextAlloc = true, a
	case 's':
		msg := make([]byte, a)
		for i := range msg {
			msg[i] = 'm'
		}
		output = msg
		fail(422, addr(msg), a)
	}
	return 0
}

func addr(b []byte) uint32 {
	if cap(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

func main() {}
