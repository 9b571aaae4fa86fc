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
// which max_concurrency bounds: every prediction holds a slot, and so does
// every member of a batch whose run is a job (batch.go). Idle workers exit
// when stop is called.
//
// A job is a task, not a func(): the runtime hands over a pooled *call,
// where a closure would be one more allocation per request.
type workers struct {
	jobs chan task     // unbuffered: a send succeeds only to a waiting worker
	quit chan struct{} // closed by stop
	once sync.Once
}

// task is a job a worker runs.
type task interface{ run() }

// taskFunc is a func() as a task.
type taskFunc func()

func (f taskFunc) run() { f() }

func newWorkers() *workers {
	return &workers{jobs: make(chan task), quit: make(chan struct{})}
}

// do runs f on an idle worker, or on a new one when none is idle. It never
// waits.
func (w *workers) do(f func()) { w.run(taskFunc(f)) }

// run is do for a task.
func (w *workers) run(t task) {
	select {
	case w.jobs <- t:
	default:
		go w.loop(t)
	}
}

func (w *workers) loop(t task) {
	for {
		t.run()
		select {
		case t = <-w.jobs:
		case <-w.quit:
			return
		}
	}
}

// stop lets idle workers exit; a job handed over later still runs, on a
// worker that exits after it.
func (w *workers) stop() { w.once.Do(func() { close(w.quit) }) }
