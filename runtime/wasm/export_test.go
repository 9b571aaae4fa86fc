package wasm

import (
	"context"
	"fmt"
	"time"
)

// StartInstance instantiates one instance from the compiled module and
// closes it, for the instance start benchmark.
func (m *Module) StartInstance(ctx context.Context) error {
	inst, err := m.instantiate(ctx)
	if err != nil {
		return err
	}
	m.close(inst)
	return nil
}

// MemoryPages is what the memory limit leaves linear memory.
func (m *Module) MemoryPages() uint32 { return m.memoryPages }

// SetLogClock replaces the clock of the log limits' one-second windows.
func (m *Module) SetLogClock(now func() time.Time) { m.logs.now = now }

// Bound is the module rewrite of bound.go, for FuzzBound: yield rewrites
// for an uninterruptible module, !yield for an interruptible one.
func Bound(bin []byte, stackLimit uint32, yield bool) ([]byte, error) {
	b, err := bound(bin, boundConfig{stackLimit: stackLimit, yield: yield, entryLoop: !yield})
	if err != nil {
		return nil, err
	}
	return b.bin, nil
}

// AppendS33 is the signed LEB128 encoder of bound.go.
var AppendS33 = appendS33

// FrameEstimates rewrites bin as New does and returns the frame estimate
// each of its function bodies adds to the stack counter on entry (the
// constant of the prologue's first i32.const).
func FrameEstimates(bin []byte) ([]uint32, error) {
	b, err := bound(bin, boundConfig{stackLimit: 1 << 20, entryLoop: true})
	if err != nil {
		return nil, err
	}
	r := reader{b: b.bin[8:]}
	var costs []uint32
	for !r.done() && r.err == nil {
		id, body := r.byte(), r.bytes(int(r.u32()))
		if id != 10 {
			continue
		}
		c := reader{b: body}
		for n := c.u32(); n > 0 && c.err == nil; n-- {
			f := reader{b: c.bytes(int(c.u32()))}
			for k := f.u32(); k > 0; k-- { // locals
				f.u32()
				f.byte()
			}
			f.byte() // global.get
			f.u32()  // depth
			if op := f.byte(); op != 0x41 {
				return nil, fmt.Errorf("prologue has %#x where i32.const was expected", op)
			}
			var v uint32
			for shift := 0; ; shift += 7 {
				x := f.byte()
				v |= uint32(x&0x7f) << shift
				if x&0x80 == 0 || f.err != nil {
					break
				}
			}
			costs = append(costs, v)
		}
		if c.err != nil {
			return nil, c.err
		}
	}
	return costs, r.err
}
