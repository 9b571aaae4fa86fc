package runtime

import (
	goruntime "runtime"
	"runtime/debug"
	gometrics "runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name              string
		floor, live, base uint64
		want              int
	}{
		{"small heap: the goal is the floor", 32 * mib, 4 * mib, 5 * mib, 560},
		{"heap above the floor: Go's default", 32 * mib, 40 * mib, 41 * mib, 100},
		{"heap near the floor: never under the default", 32 * mib, 20 * mib, 30 * mib, 100},
		{"tiny heap: bounded", 32 * mib, 1024, 2048, gcMaxPercent},
		{"nothing measured yet", 32 * mib, 0, 0, 100},
	} {
		if got := gcPercentFor(c.floor, c.live, c.base); got != c.want {
			t.Errorf("%s: gcPercentFor(%d, %d, %d) = %d, want %d", c.name, c.floor, c.live, c.base, got, c.want)
		}
	}
}

func TestGCFloorFor(t *testing.T) {
	for _, c := range []struct{ limit, want uint64 }{
		{0, gcFloorMax},         // no limit known
		{128 << 20, 16 << 20},   // a 128 MB Lambda function: an eighth
		{1 << 30, gcFloorMax},   // a GiB: the whole floor
		{256 << 20, gcFloorMax}, // exactly 8 floors
	} {
		if got := gcFloorFor(c.limit); got != c.want {
			t.Errorf("gcFloorFor(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
	for _, c := range []struct {
		file string
		want uint64
	}{
		{"536870912\n", 512 << 20},   // v2 or v1, a limit
		{"max\n", 0},                 // v2, none
		{"9223372036854771712\n", 0}, // v1, none
		{"", 0},
	} {
		if got := parseMemoryLimit([]byte(c.file)); got != c.want {
			t.Errorf("parseMemoryLimit(%q) = %d, want %d", c.file, got, c.want)
		}
	}
	t.Setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
	if got := memoryLimit(); got != 128<<20 {
		t.Errorf("memoryLimit with a 128 MB Lambda function: %d, want %d", got, 128<<20)
	}
}

// TestGCFloorSetsGOGC: after a collection, the floor raises GOGC so that
// the next heap goal is the floor (this test process's live heap is a few
// MiB, far under 256 MiB).
func TestGCFloorSetsGOGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	f := &gcFloor{floor: 256 << 20}
	t.Cleanup(func() {
		f.stopped.Store(true)
		debug.SetGCPercent(old)
	})
	f.arm()
	s := []gometrics.Sample{{Name: "/gc/gogc:percent"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		goruntime.GC()
		gometrics.Read(s)
		if p := s[0].Value.Uint64(); p > 100 {
			if p > gcMaxPercent {
				t.Errorf("GOGC is %d, over the floor's bound %d", p, gcMaxPercent)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after collections for 10s: the floor's hook did not run", s[0].Value.Uint64())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
