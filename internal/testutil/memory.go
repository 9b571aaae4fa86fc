package testutil

import (
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WatchMemory samples the Go heap until the returned function is called,
// which reports the peak heap in use and the process's peak RSS (VmHWM,
// reset first through /proc/self/clear_refs where the kernel allows): for
// benchmarks that show memory does not grow with what they stream.
func WatchMemory() func() (heap, rss uint64) {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m goruntime.MemStats
		for {
			goruntime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	return func() (uint64, uint64) {
		close(stop)
		wg.Wait()
		return peak.Load(), vmHWM()
	}
}

// vmHWM is the process's peak resident set size, in bytes (0 where
// /proc/self/status does not say).
func vmHWM() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
