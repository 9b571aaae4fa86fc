package runtime

import (
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWorkersRunEveryJobOnce(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	var ran [1000]atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < len(ran); i += 8 {
				wg.Add(1)
				w.do(func() { ran[i].Add(1); wg.Done() })
			}
		})
	}
	wg.Wait()
	for i := range ran {
		if n := ran[i].Load(); n != 1 {
			t.Fatalf("job %d ran %d times", i, n)
		}
	}
}

func TestWorkersAfterStop(t *testing.T) {
	w := newWorkers()
	done := make(chan struct{})
	w.do(func() {})
	w.stop()
	w.stop() // a second Shutdown must not panic
	w.do(func() { close(done) })
	<-done
}

// TestWorkersDropFinishedJobs checks that an idle worker does not keep its
// last job, and so the request the job holds, alive.
func TestWorkersDropFinishedJobs(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	freed := make(chan struct{})
	func() {
		body := new([1 << 20]byte)
		goruntime.AddCleanup(body, func(ch chan struct{}) { close(ch) }, freed)
		done := make(chan struct{})
		w.do(func() { body[0] = 1; close(done) })
		<-done
	}()
	for range 100 {
		goruntime.GC()
		select {
		case <-freed:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("a finished job is still reachable from its idle worker")
}
