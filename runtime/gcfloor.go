package runtime

import (
	"bytes"
	"os"
	goruntime "runtime"
	"runtime/debug"
	gometrics "runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
)

// The function process keeps the garbage collector's heap goal at least a
// floor (gcFloorMax, less where memory is tight) instead of twice the live
// heap. A function's live Go heap is small, a few MiB: its model lives in
// ONNX Runtime's memory or in the predictor's own, outside the Go heap. At
// Go's default (GOGC=100) the collector then runs every few MiB allocated,
// some 25 times a second at 30 000 requests a second, and each cycle's
// fixed cost (stacks, globals, write barriers on, assists) is paid that
// often: the floor saves 9 % of the CPU a batched iris request takes and
// 5 % of an unbatched one (BENCHMARKS.md, issue 17). Above the floor the
// collector paces as GOGC=100 does.
//
// It is Go's own GOGC, set after every cycle from the live heap the cycle
// found, in the way production Go services tune it (a heap floor, as a
// ballast once did, without the ballast's address space). A library that
// tunes GOGC (bytedance/gopkg's gctuner) aims at a ceiling instead, GOGC
// falling as the heap nears a threshold; the floor is a few lines.
//
// A GOGC or GOMEMLIMIT in the environment is the user's choice: the floor
// is then not set, and the collector runs as they said.

// gcFloorMax is the heap floor where memory is not tight.
const gcFloorMax = 32 << 20

// gcMaxPercent bounds the GOGC the floor sets for a tiny live heap.
const gcMaxPercent = 10_000

var gcFloorOnce sync.Once

// startGCFloor keeps the heap goal at or above the floor for the rest of
// the process, unless the environment tunes the collector itself.
func startGCFloor() {
	gcFloorOnce.Do(func() {
		if _, ok := os.LookupEnv("GOGC"); ok {
			return
		}
		if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
			return
		}
		f := &gcFloor{floor: gcFloorFor(memoryLimit())}
		f.arm()
	})
}

// gcFloorFor is the floor for a process whose memory is limited to limit
// bytes (0: no limit known): gcFloorMax, or an eighth of a smaller limit,
// so that a 128 MB Lambda function keeps most of its memory for the rest.
func gcFloorFor(limit uint64) uint64 {
	if limit > 0 && limit/8 < gcFloorMax {
		return limit / 8
	}
	return gcFloorMax
}

// memoryLimit is the memory the process may use, when the platform says:
// the Lambda function's memory size, or the container's cgroup limit (v2,
// else v1). 0 when none is known.
func memoryLimit() uint64 {
	if mb, err := strconv.ParseUint(os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64); err == nil && mb > 0 {
		return mb << 20
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(path); err == nil {
			return parseMemoryLimit(b)
		}
	}
	return 0
}

// parseMemoryLimit reads a cgroup's memory limit: bytes, or "max" (v2) or
// a page-rounded 2^63 (v1) for none, which it returns as 0.
func parseMemoryLimit(b []byte) uint64 {
	n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil || n >= 1<<62 {
		return 0
	}
	return n
}

// gcFloor sets GOGC after each collection.
type gcFloor struct {
	floor   uint64
	samples [3]gometrics.Sample
	percent int         // what it last set; 0 before it set any
	stopped atomic.Bool // for tests: the process's floor is never stopped
}

// gcSentinel is an object whose only use is to be collected: its cleanup
// runs once per collection. It holds a pointer so that it is not allocated
// in a tiny block with other objects, which would delay its cleanup.
type gcSentinel struct{ _ *int }

// arm runs adjust after the next collection, and so on after every one.
func (f *gcFloor) arm() {
	goruntime.AddCleanup(&gcSentinel{}, func(f *gcFloor) {
		if f.stopped.Load() {
			return
		}
		f.adjust()
		f.arm()
	}, f)
}

// adjust sets GOGC so that the next heap goal is the floor, or what
// GOGC=100 makes of the live heap when that is more.
func (f *gcFloor) adjust() {
	f.samples[0].Name = "/gc/heap/live:bytes"
	f.samples[1].Name = "/gc/scan/stack:bytes"
	f.samples[2].Name = "/gc/scan/globals:bytes"
	gometrics.Read(f.samples[:])
	var v [3]uint64
	for i, s := range f.samples {
		if s.Value.Kind() == gometrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := gcPercentFor(f.floor, v[0], v[0]+v[1]+v[2])
	// Small moves are not worth a change of pace.
	if f.percent == 0 || p < f.percent*9/10 || p > f.percent*11/10 {
		debug.SetGCPercent(p)
		f.percent = p
	}
}

// gcPercentFor is the GOGC whose heap goal is floor for a collection that
// found live bytes of heap and scans base bytes (heap, stacks, globals):
// Go's goal is live + base × GOGC/100. Never under 100, Go's default, and
// never over gcMaxPercent.
func gcPercentFor(floor, live, base uint64) int {
	if base == 0 || live >= floor {
		return 100
	}
	p := (floor - live) * 100 / base
	return int(max(100, min(p, gcMaxPercent)))
}
