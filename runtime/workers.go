package runtime

import "sync"

// workers runs predictions on goroutines that outlive them. A goroutine
// starts with a small stack and grows it, by copying, as deep as the
// predictor's calls go (a float parser alone wants a few KiB): a new
// goroutine per prediction paid that copy on every request, 7% of the CPU
// of a single-row iris request. A worker keeps its grown stack and waits
// for the next job.
//
// There are never more idle workers than the most jobs ever run at once,
// which max_concurrency bounds (every prediction holds a slot). Idle
// workers exit when stop is called.
type workers struct {
	jobs chan func()   // unbuffered: a send succeeds only to a waiting worker
	quit chan struct{} // closed by stop
	once sync.Once
}

func newWorkers() *workers {
	return &workers{jobs: make(chan func()), quit: make(chan struct{})}
}

// do runs f on an idle worker, or on a new one when none is idle. It never
// waits.
func (w *workers) do(f func()) {
	select {
	case w.jobs <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	for {
		f()
		select {
		case f = <-w.jobs:
		case <-w.quit:
			return
		}
	}
}

// stop lets idle workers exit; a job handed over later still runs, on a
// worker that exits after it.
func (w *workers) stop() { w.once.Do(func() { close(w.quit) }) }
