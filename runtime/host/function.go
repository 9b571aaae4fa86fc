package host

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cortexfn/cortex/functions"
)

type procState int

const (
	stateStarting procState = iota
	stateReady
	stateDraining
)

func (s procState) String() string {
	switch s {
	case stateStarting:
		return "starting"
	case stateReady:
		return "ready"
	default:
		return "draining"
	}
}

// function is one function's processes, queue and autoscaler. Every field
// below mu, and the state, inflight and idleSince of its processes, are
// guarded by mu.
type function struct {
	h    *Host
	spec Function
	m    fnMetrics
	tick time.Duration
	stop chan struct{}

	mu       sync.Mutex
	procs    []*process // spawned and not yet exited
	waiters  []*waiter  // FIFO of requests held for a slot
	inflight int        // requests forwarded and not yet finished
	peak     int        // highest demand since the last tick
	samples  []sample   // per-tick peaks over the stable window
	closed   bool

	failures int       // consecutive failed starts
	crashes  int       // consecutive crashes soon after ready (crash loop)
	retryAt  time.Time // no start before this
	lastErr  string    // why the latest start failed

	coldStarts, startFailures, crashCount, scaleUps, scaleDowns int64
	lastColdStart                                               time.Duration
}

type sample struct {
	at    time.Time
	value int
}

// waiter is a request held until a process has a slot for it.
type waiter struct {
	ch chan grant // buffered: the granter never blocks
}

type grant struct {
	p   *process
	err error
}

func newFunction(h *Host, spec Function) *function {
	a := spec.Scale
	// Tick often enough that the delay and the window are honoured to
	// within a quarter, and never spin.
	base := a.StableWindow
	if a.ScaleDownDelay > 0 {
		base = min(base, a.ScaleDownDelay)
	}
	tick := min(max(base/4, 20*time.Millisecond), 500*time.Millisecond)
	return &function{
		h:    h,
		spec: spec,
		m:    h.m.forFunction(spec.Name),
		tick: tick,
		stop: make(chan struct{}),
	}
}

// acquire returns a ready process with a free slot for one request, holding
// the request (bounded by MaxQueue) until one has a slot. It starts
// processes as demand asks. The caller must release the process.
func (f *function) acquire(ctx context.Context) (*process, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, shuttingDown()
	}
	if len(f.waiters) == 0 {
		if p := f.pickLocked(); p != nil {
			f.assignLocked(p)
			f.scaleUpLocked()
			f.gaugesLocked()
			f.mu.Unlock()
			return p, nil
		}
	}
	if f.activeLocked() == 0 && time.Now().Before(f.retryAt) {
		err := f.backoffErrorLocked()
		f.mu.Unlock()
		return nil, err
	}
	if len(f.waiters) >= f.spec.MaxQueue {
		a := f.spec.Scale
		active := f.activeLocked()
		f.m.rejected.Inc()
		f.mu.Unlock()
		return nil, &functions.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Message: fmt.Sprintf("function %q is at capacity: %d of at most %d processes (max_scale), %d requests each (target_concurrency), and %d requests already queued (max_queue); retry later",
				f.spec.Name, active, a.MaxScale, a.TargetConcurrency, f.spec.MaxQueue)}
	}
	w := &waiter{ch: make(chan grant, 1)}
	f.waiters = append(f.waiters, w)
	f.scaleUpLocked()
	f.gaugesLocked()
	f.mu.Unlock()

	select {
	case g := <-w.ch:
		return g.p, g.err
	case <-ctx.Done():
	}
	f.mu.Lock()
	if i := slices.Index(f.waiters, w); i >= 0 {
		f.waiters = slices.Delete(f.waiters, i, i+1)
		f.gaugesLocked()
		f.mu.Unlock()
		return nil, ctx.Err()
	}
	f.mu.Unlock()
	// Granted while the caller left: give the slot back.
	if g := <-w.ch; g.p != nil {
		f.release(g.p)
	}
	return nil, ctx.Err()
}

// release gives back the slot a request held on p and hands it to the
// next waiter.
func (f *function) release(p *process) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.inflight--
	f.inflight--
	if p.inflight == 0 {
		p.idleSince = time.Now()
	}
	f.dispatchLocked()
	f.gaugesLocked()
}

// pickLocked returns the least-loaded ready process with a free slot.
func (f *function) pickLocked() *process {
	var best *process
	for _, p := range f.procs {
		if p.state != stateReady || p.inflight >= f.spec.Scale.TargetConcurrency {
			continue
		}
		if best == nil || p.inflight < best.inflight {
			best = p
		}
	}
	return best
}

func (f *function) assignLocked(p *process) {
	p.inflight++
	f.inflight++
	f.peak = max(f.peak, f.demandLocked())
}

// dispatchLocked hands free slots to waiters, oldest first.
func (f *function) dispatchLocked() {
	for len(f.waiters) > 0 {
		p := f.pickLocked()
		if p == nil {
			return
		}
		w := f.waiters[0]
		f.waiters[0] = nil
		f.waiters = f.waiters[1:]
		f.assignLocked(p)
		w.ch <- grant{p: p}
	}
}

func (f *function) failWaitersLocked(err error) {
	for _, w := range f.waiters {
		w.ch <- grant{err: err}
	}
	clear(f.waiters)
	f.waiters = f.waiters[:0]
}

func (f *function) demandLocked() int { return f.inflight + len(f.waiters) }

// activeLocked counts the processes that serve or will: starting or ready.
func (f *function) activeLocked() int {
	n := 0
	for _, p := range f.procs {
		if p.state != stateDraining {
			n++
		}
	}
	return n
}

// wantLocked is ceil(demand / target) clamped to [min, max].
func (f *function) wantLocked(demand float64) int {
	a := f.spec.Scale
	want := int(math.Ceil(demand/float64(a.TargetConcurrency) - 1e-9))
	return min(max(want, a.MinScale), a.MaxScale)
}

// scaleUpLocked starts processes until the active ones cover the demand
// now, unless the function is in backoff after a failed start.
func (f *function) scaleUpLocked() {
	f.peak = max(f.peak, f.demandLocked())
	if f.closed {
		return
	}
	want := f.wantLocked(float64(f.demandLocked()))
	for n := f.activeLocked(); n < want; n++ {
		if time.Now().Before(f.retryAt) {
			return
		}
		f.startLocked()
	}
}

// startLocked spawns a process. Spawning (fork and exec) is quick, and
// doing it under the lock means a process in f.procs always has a PID.
func (f *function) startLocked() {
	p, err := spawn(f)
	if err != nil {
		f.startFailedLocked(fmt.Sprintf("could not start %q: %v", f.spec.Command[0], err))
		go f.h.emit(Event{Function: f.spec.Name, Type: EventStartFailed, Err: err})
		return
	}
	f.procs = append(f.procs, p)
	f.scaleUps++
	f.m.scaleUp.Inc()
	f.gaugesLocked()
	go f.supervise(p)
}

// startFailedLocked records a failed start: backoff, and the held requests
// get a 503 with the reason when no other process can take them.
func (f *function) startFailedLocked(reason string) {
	f.failures++
	f.startFailures++
	f.m.startFailures.Inc()
	backoff := f.backoffLocked(f.failures)
	f.retryAt = time.Now().Add(backoff)
	f.lastErr = fmt.Sprintf("function %q failed to start: %s", f.spec.Name, reason)
	f.h.opts.logger.Error("function failed to start", "function", f.spec.Name, "reason", reason, "retry_in", backoff.String())
	if f.activeLocked() == 0 {
		f.failWaitersLocked(f.backoffErrorLocked())
	}
}

// backoffLocked is the wait after the n-th consecutive failure.
func (f *function) backoffLocked(n int) time.Duration {
	b := f.h.opts.backoff << min(n-1, 30)
	if b <= 0 || b > f.h.opts.maxBackoff {
		b = f.h.opts.maxBackoff
	}
	return b
}

// crashLoopWindow: a process that dies sooner than this after ready counts
// towards a crash loop.
const crashLoopWindow = 10 * time.Second

// crashedLocked records a ready process that died. The first crash is
// replaced at once (the next request gets a fresh process); a process
// that keeps dying soon after ready puts the function in backoff like a
// failed start, so MinScale or steady traffic cannot make it spin.
func (f *function) crashedLocked(p *process) {
	f.crashCount++
	f.m.crashes.Inc()
	reason := p.exitReason()
	f.h.opts.logger.Error("function process died", "function", f.spec.Name, "pid", p.pid, "reason", reason)
	if time.Since(p.readyAt) >= crashLoopWindow {
		f.crashes = 0
		return
	}
	if f.crashes++; f.crashes < 2 {
		return
	}
	f.retryAt = time.Now().Add(f.backoffLocked(f.crashes - 1))
	f.lastErr = fmt.Sprintf("function %q keeps crashing: process %d %s %s after it was ready",
		f.spec.Name, p.pid, reason, time.Since(p.readyAt).Round(time.Millisecond))
	if f.activeLocked() == 0 {
		f.failWaitersLocked(f.backoffErrorLocked())
	}
}

func (f *function) backoffErrorLocked() error {
	return &functions.Error{Status: http.StatusServiceUnavailable, Message: f.lastErr,
		RetryAfter: max(time.Until(f.retryAt), time.Second)}
}

func shuttingDown() error {
	return &functions.Error{Status: http.StatusServiceUnavailable, Message: "cortex serve is shutting down",
		RetryAfter: time.Second, Err: ErrShuttingDown}
}

// onReady moves a started process into the routing table.
func (f *function) onReady(p *process, took time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.state != stateStarting {
		return false // told to stop while starting
	}
	p.state = stateReady
	p.readyAt = time.Now()
	p.idleSince = p.readyAt
	f.failures, f.retryAt, f.lastErr = 0, time.Time{}, ""
	f.coldStarts++
	f.lastColdStart = took
	f.m.coldStarts.Inc()
	f.m.coldStartTime.Observe(took.Seconds())
	f.dispatchLocked()
	f.gaugesLocked()
	return true
}

// onExit removes an exited process and says what its exit was.
func (f *function) onExit(p *process) Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.procs = slices.DeleteFunc(f.procs, func(q *process) bool { return q == p })
	ev := Event{Function: f.spec.Name, PID: p.pid, Err: p.exitErr()}
	switch p.state {
	case stateStarting:
		reason := p.startFailure()
		ev.Type, ev.Err = EventStartFailed, errors.New(reason)
		f.startFailedLocked(reason)
	case stateReady:
		ev.Type, ev.Err = EventCrash, errors.New(p.exitReason())
		f.crashedLocked(p)
	default:
		ev.Type = EventExit
		f.crashes = 0
	}
	// Requests in flight on p get their 502 from the proxy; the ones
	// waiting go to the others, or to a fresh process.
	f.scaleUpLocked()
	f.gaugesLocked()
	return ev
}

// autoscaler runs the scale-down side, keeps MinScale, and retries a start
// for held requests once a backoff ends.
func (f *function) autoscaler() {
	t := time.NewTicker(f.tick)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case now := <-t.C:
			for _, p := range f.autoscale(now) {
				f.h.emit(Event{Function: f.spec.Name, Type: EventDrain, PID: p.pid})
				go p.drain(f.h.opts.drainTimeout)
			}
		}
	}
}

// autoscale records this tick's demand and returns the processes it chose
// to drain: ready, idle for at least ScaleDownDelay, and not needed by the
// average demand over the stable window nor by the demand now.
func (f *function) autoscale(now time.Time) []*process {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	demand := f.demandLocked()
	f.samples = append(f.samples, sample{now, max(f.peak, demand)})
	f.peak = demand
	cut := 0
	for cut < len(f.samples) && now.Sub(f.samples[cut].at) > f.spec.Scale.StableWindow {
		cut++
	}
	f.samples = slices.Delete(f.samples, 0, cut)
	sum := 0
	for _, s := range f.samples {
		sum += s.value
	}
	stable := f.wantLocked(float64(sum) / float64(len(f.samples)))

	f.scaleUpLocked()
	excess := f.activeLocked() - max(stable, f.wantLocked(float64(demand)))
	if excess <= 0 {
		return nil
	}
	var idle []*process
	for _, p := range f.procs {
		if p.state == stateReady && p.inflight == 0 && now.Sub(p.idleSince) >= f.spec.Scale.ScaleDownDelay {
			idle = append(idle, p)
		}
	}
	slices.SortFunc(idle, func(a, b *process) int { return a.idleSince.Compare(b.idleSince) })
	idle = idle[:min(excess, len(idle))]
	for _, p := range idle {
		p.state = stateDraining
		f.scaleDowns++
		f.m.scaleDown.Inc()
	}
	f.gaugesLocked()
	return idle
}

// close stops the autoscaler, fails held requests and tells every process
// to stop.
func (f *function) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.stop)
	f.failWaitersLocked(shuttingDown())
	procs := slices.Clone(f.procs)
	for _, p := range procs {
		p.state = stateDraining
	}
	f.gaugesLocked()
	f.mu.Unlock()
	f.h.closeIdle()
	for _, p := range procs {
		f.h.emit(Event{Function: f.spec.Name, Type: EventDrain, PID: p.pid})
		p.signal(sigTerm)
	}
}

func (f *function) allProcs() []*process {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.procs)
}

func (f *function) gaugesLocked() {
	var n [3]int
	for _, p := range f.procs {
		n[p.state]++
	}
	f.m.starting.Set(float64(n[stateStarting]))
	f.m.ready.Set(float64(n[stateReady]))
	f.m.draining.Set(float64(n[stateDraining]))
	f.m.inFlight.Set(float64(f.inflight))
	f.m.queued.Set(float64(len(f.waiters)))
}

func (f *function) status() FunctionStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := FunctionStatus{
		Name:          f.spec.Name,
		Processes:     make([]ProcessStatus, 0, len(f.procs)),
		InFlight:      f.inflight,
		Queued:        len(f.waiters),
		ColdStarts:    f.coldStarts,
		LastColdStart: f.lastColdStart,
		StartFailures: f.startFailures,
		Crashes:       f.crashCount,
		ScaleUps:      f.scaleUps,
		ScaleDowns:    f.scaleDowns,
	}
	if time.Now().Before(f.retryAt) {
		s.LastError, s.RetryAt = f.lastErr, f.retryAt
	}
	for _, p := range f.procs {
		switch p.state {
		case stateStarting:
			s.Starting++
		case stateReady:
			s.Ready++
		default:
			s.Draining++
		}
		s.Processes = append(s.Processes, ProcessStatus{PID: p.pid, Addr: p.addr, State: p.state.String(),
			InFlight: p.inflight, Started: p.started})
	}
	return s
}
