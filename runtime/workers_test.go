package runtime

import (
	"sync"
	"sync/atomic"
	"testing"
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
