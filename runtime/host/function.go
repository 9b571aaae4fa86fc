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
// below mu, and the state, inflight, idle and idleSince of its processes,
// are guarded by mu.
type function struct {
	h    *Host
	name string // Function.Name: the same for every revision
	m    fnMetrics
	stop chan struct{}

	mu sync.Mutex
	// spec is the revision that serves, rev its number (1 for the one
	// given to New). A spec is never changed once stored: a process keeps
	// a pointer to the one it was spawned with.
	spec *Function
	rev  int
	// next is a replacement starting beside spec's processes (see
	// Host.Replace), nextRev its number; nil while there is none. revs is
	// the highest number handed out.
	next     *Function
	nextRev  int
	revs     int
	buildErr string        // why the latest build or replacement failed while spec serves
	tick     time.Duration // the autoscaler's period, from spec.Scale

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

	coldStarts, startFailures, crashCount, replaced, scaleUps, scaleDowns int64
	lastColdStart                                                         time.Duration
	lastColdStartAt                                                       time.Time
	lastColdPhases                                                        *phaseRecord // the latest ready process's

	direct *direct // the function's own socket; nil without Function.Listener
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

func newFunction(h *Host, spec *Function) *function {
	return &function{
		h:    h,
		name: spec.Name,
		m:    h.m.forFunction(spec.Name),
		stop: make(chan struct{}),
		spec: spec,
		rev:  1,
		revs: 1,
		tick: tickFor(spec.Scale),
	}
}

// tickFor is the autoscaler's period: often enough that the delay and the
// window are honoured to within a quarter, and never a spin.
func tickFor(a Autoscaling) time.Duration {
	base := a.StableWindow
	if a.ScaleDownDelay > 0 {
		base = min(base, a.ScaleDownDelay)
	}
	return min(max(base/4, 20*time.Millisecond), 500*time.Millisecond)
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
	if f.spec.Err != nil {
		err := f.cannotRunLocked()
		f.mu.Unlock()
		return nil, err
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
				f.name, active, a.MaxScale, a.TargetConcurrency, f.spec.MaxQueue)}
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
	if p.inflight == 0 && p.rep.InFlight == 0 {
		p.idleSince = time.Now()
		if p.idle != nil {
			close(p.idle) // a retired process's last request is done: see retireLocked
			p.idle = nil
		}
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

// demandLocked is the requests in flight and held. A process that accepts
// on the function's socket counts with what it reported, or with what the
// host gave it, whichever is more: the host's requests are among the ones
// it reports, which may be a report old.
func (f *function) demandLocked() int {
	if f.direct == nil {
		return f.inflight + len(f.waiters)
	}
	n := len(f.waiters)
	for _, p := range f.procs {
		n += max(p.inflight, p.rep.InFlight)
	}
	return n
}

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
// now, unless the function is in backoff after a failed start or has no
// build that can run.
func (f *function) scaleUpLocked() {
	f.peak = max(f.peak, f.demandLocked())
	if f.closed || f.spec.Err != nil {
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

// startLocked spawns a process of the newest revision: the replacement
// while one is starting, so that the demand that needs more processes also
// brings it up sooner. Spawning (fork and exec) is quick, and doing it
// under the lock means a process in f.procs always has a PID.
func (f *function) startLocked() {
	spec, rev := f.spec, f.rev
	if f.next != nil {
		spec, rev = f.next, f.nextRev
	}
	p, err := spawn(f, spec, rev)
	if err != nil {
		f.startFailedLocked(rev, fmt.Sprintf("could not start %q: %v", spec.Command[0], err), "")
		go f.h.emit(Event{Function: f.name, Type: EventStartFailed, Err: err})
		return
	}
	f.procs = append(f.procs, p)
	f.scaleUps++
	f.m.scaleUp.Inc()
	f.gaugesLocked()
	go f.supervise(p)
}

// startFailedLocked records a failed start of a process of revision rev:
// backoff, and the held requests get a 503 with the reason when no other
// process can take them. A replacement that fails to start is abandoned
// instead, with no backoff: the revision that serves is not at fault.
// stderr, the last lines the process wrote there, goes to the log only.
func (f *function) startFailedLocked(rev int, reason, stderr string) {
	f.startFailures++
	f.m.startFailures.Inc()
	if f.next != nil && rev == f.nextRev {
		f.abandonLocked(reason, stderr)
		return
	}
	f.failures++
	backoff := f.backoffLocked(f.failures)
	f.retryAt = time.Now().Add(backoff)
	f.lastErr = fmt.Sprintf("function %q failed to start: %s", f.name, reason)
	f.h.opts.logger.Error("function failed to start", withStderr(stderr, "function", f.name, "reason", reason, "retry_in", backoff.String())...)
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
	reason := p.ExitReason()
	f.h.opts.logger.Error("function process died", "function", f.name, "pid", p.PID(), "reason", reason)
	if time.Since(p.readyAt) >= crashLoopWindow {
		f.crashes = 0
		return
	}
	if f.crashes++; f.crashes < 2 {
		return
	}
	f.retryAt = time.Now().Add(f.backoffLocked(f.crashes - 1))
	f.lastErr = fmt.Sprintf("function %q keeps crashing: process %d %s %s after it was ready",
		f.name, p.PID(), reason, time.Since(p.readyAt).Round(time.Millisecond))
	if f.activeLocked() == 0 {
		f.failWaitersLocked(f.backoffErrorLocked())
	}
}

// errBackoff marks the answer of a function in backoff: its latest start
// failed, or its processes keep crashing. Host.refuse logs each such
// answer with its request id.
var errBackoff = errors.New("host: the function is in backoff")

func (f *function) backoffErrorLocked() error {
	return &functions.Error{Status: http.StatusServiceUnavailable, Message: f.lastErr,
		RetryAfter: max(time.Until(f.retryAt), time.Second), Err: errBackoff}
}

// withStderr adds a process's last lines of stderr, when there are any, to
// the attributes of a log record.
func withStderr(stderr string, attrs ...any) []any {
	if stderr != "" {
		attrs = append(attrs, "stderr", stderr)
	}
	return attrs
}

// cannotRunLocked is the answer of a function with no build that runs.
// There is no Retry-After: a build error waits for a person, not for time.
func (f *function) cannotRunLocked() error {
	return &functions.Error{Status: http.StatusServiceUnavailable, Err: f.spec.Err,
		Message: fmt.Sprintf("function %q cannot run: %v", f.name, f.spec.Err)}
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
	if f.next != nil && p.rev == f.nextRev {
		f.promoteLocked()
	}
	f.failures, f.retryAt, f.lastErr = 0, time.Time{}, ""
	f.coldStarts++
	f.lastColdStart, f.lastColdStartAt, f.lastColdPhases = took, p.readyAt, p.cold
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
	ev := Event{Function: f.name, PID: p.PID(), Err: p.Err()}
	switch {
	case p.state == stateStarting:
		reason, stderr := p.startFailure()
		ev.Type, ev.Err = EventStartFailed, errors.New(reason)
		f.startFailedLocked(p.rev, reason, stderr)
	case p.ExitedToBeReplaced():
		// The process asked for a successor: it is not at fault, so no
		// crash and no backoff; the next request that needs a process
		// starts one.
		ev.Type = EventReplace
		f.replaced++
		f.m.replaced.Inc()
		f.h.opts.logger.Warn("function process exited to be replaced", "function", f.name, "pid", p.PID())
	case p.state == stateReady:
		ev.Type, ev.Err = EventCrash, errors.New(p.ExitReason())
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
	f.mu.Lock()
	tick := f.tick
	f.mu.Unlock()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case now := <-t.C:
			drain, next := f.autoscale(now)
			for _, p := range drain {
				f.h.emit(Event{Function: f.name, Type: EventDrain, PID: p.PID()})
				go func() {
					if p.ctl != nil {
						// It was told to quiesce (see direct.syncLocked): a
						// request already read from one of its connections
						// is served before SIGTERM makes the runtime refuse
						// new ones.
						time.Sleep(quiesceGrace)
					}
					p.drain(f.h.opts.drainTimeout)
				}()
			}
			if next != tick { // a replacement brought other autoscaling settings
				tick = next
				t.Reset(tick)
			}
		}
	}
}

// autoscale records this tick's demand and returns the processes it chose
// to drain: ready, idle for at least ScaleDownDelay, and not needed by the
// average demand over the stable window nor by the demand now. It also
// returns the period for the next tick.
func (f *function) autoscale(now time.Time) ([]*process, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, f.tick
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
		return nil, f.tick
	}
	var idle []*process
	for _, p := range f.procs {
		if p.state == stateReady && p.inflight == 0 && p.rep.InFlight == 0 && now.Sub(p.idleSince) >= f.spec.Scale.ScaleDownDelay {
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
	return idle, f.tick
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
	if f.direct != nil {
		f.direct.closeLocked()
	}
	f.mu.Unlock()
	f.h.closeIdle()
	for _, p := range procs {
		f.h.emit(Event{Function: f.name, Type: EventDrain, PID: p.PID()})
		p.Terminate()
	}
}

func (f *function) allProcs() []*process {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.procs)
}

// gaugesLocked updates the function's gauges after a change of its
// processes or requests, and has the host accept on the function's socket
// exactly while no process does (see direct.syncLocked): every change of a
// process's state ends here.
func (f *function) gaugesLocked() {
	if f.direct != nil {
		f.direct.syncLocked()
	}
	var n [3]int
	for _, p := range f.procs {
		n[p.state]++
	}
	f.m.starting.Set(float64(n[stateStarting]))
	f.m.ready.Set(float64(n[stateReady]))
	f.m.draining.Set(float64(n[stateDraining]))
	f.m.inFlight.Set(float64(f.inflight))
	f.m.queued.Set(float64(len(f.waiters)))
	f.h.changes.notify()
}

func (f *function) status() FunctionStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	s := FunctionStatus{
		Name:            f.name,
		Revision:        f.rev,
		BuildError:      f.buildErr,
		Processes:       make([]ProcessStatus, 0, len(f.procs)),
		InFlight:        f.inflight,
		Queued:          len(f.waiters),
		ColdStarts:      f.coldStarts,
		LastColdStart:   f.lastColdStart,
		LastColdStartAt: f.lastColdStartAt,
		StartFailures:   f.startFailures,
		Crashes:         f.crashCount,
		Replaced:        f.replaced,
		ScaleUps:        f.scaleUps,
		ScaleDowns:      f.scaleDowns,
	}
	s.LastColdStartPhases = f.lastColdPhases.snapshot()
	s.Requests, s.Errors = f.m.requests.counts()
	if now.Before(f.retryAt) {
		s.LastError, s.RetryAt = f.lastErr, f.retryAt
	}
	if f.direct != nil {
		s.Listen, s.DirectRequests = f.direct.listenAddr(), f.direct.served
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
		s.Processes = append(s.Processes, ProcessStatus{PID: p.PID(), Addr: p.Addr(), State: p.state.String(),
			Revision: p.rev, InFlight: max(p.inflight, p.rep.InFlight), Started: p.Started()})
	}
	switch {
	case f.spec.Err != nil:
		s.State, s.Error = StateFailed, f.spec.Err.Error()
	case s.Ready > 0:
		s.State = StateReady
	case f.failures > 0 || now.Before(f.retryAt):
		// The latest start failed, or the processes keep crashing: until a
		// start succeeds, requests get this error.
		s.State, s.Error = StateFailed, f.lastErr
	case s.Starting > 0:
		s.State = StateStarting
	default:
		s.State = StateIdle
	}
	return s
}
