package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cortexfn/cortex/functions"
)

// DefaultBatchInterval is how long a batch waits for more members after
// its first arrived when batching.batch_interval is not set.
const DefaultBatchInterval = 5 * time.Millisecond

// batcher gathers concurrent requests for the same model into batches
// (batching.* in cortex.yaml). A batch closes when it holds MaxBatchSize
// members or BatchInterval after its first member arrived, and then runs
// as one PredictBatch call; a predictor without PredictBatch gets one
// Predict per member, run concurrently.
//
// Each member is a request that already holds its own concurrency slot,
// so max_concurrency still bounds the members waiting and running.
//
// A member waits for its answer on its caller's goroutine (gather), not on
// a prediction worker: a worker would only pass the request on to the
// batch and the answer back, two goroutine handoffs per request that no
// batch shares. The batch's one call runs on a worker (a batch's single
// handoff), never on a member's goroutine, so every member, whichever
// filled the batch, still answers its caller at its own deadline, and a
// PredictBatch that overruns is watched as a lone prediction is.
// Requests that have work of their own to run first (WebAssembly stages,
// a KServe V1 body converted with the model's metadata, an asynchronous
// prediction) join from their worker instead (join), as before.
type batcher struct {
	r        *Runtime
	bp       functions.BatchPredictor // nil: one Predict per member
	max      int
	interval time.Duration

	mu      sync.Mutex
	pending map[batchKey]*batch // open batches

	// free holds members, each with its channel, for reuse: a member and
	// its channel are not allocated per request.
	free sync.Pool
}

// batchKey is the model and version a batch serves: only requests for the
// same model version run together.
type batchKey struct{ model, version string }

func newBatcher(r *Runtime) *batcher {
	b := &batcher{
		r:        r,
		max:      r.cfg.Batching.MaxBatchSize,
		interval: r.cfg.Batching.BatchInterval.D(),
		pending:  map[batchKey]*batch{},
	}
	if b.interval <= 0 {
		b.interval = DefaultBatchInterval
	}
	b.bp, _ = r.p.(functions.BatchPredictor)
	return b
}

// batch is a group of members that run together.
type batch struct {
	b       *batcher
	key     batchKey
	flushAt time.Time
	timer   *time.Timer
	members []*member // guarded by batcher.mu until the batch is closed
	closed  bool

	// Once closed, guarded by batcher.mu: live counts the members still
	// waiting for the answer; when the last one leaves, the run is
	// cancelled. ran turns true when the run has its answers, which it
	// then hands out; from then on no member leaves. finished, made by
	// the first member to hand itself over, is closed once the run ends.
	live     int
	cancel   context.CancelFunc
	ran      bool
	finished chan result
}

// member is one request in a batch.
type member struct {
	ctx     context.Context
	req     *functions.Request
	arrived time.Time
	// done receives at most one message while the member is in a batch:
	// its answer. Buffered, so the run never waits for a member that has
	// gone; empty again once the member has received, so the member can be
	// reused.
	done chan batchResult
	// handedOver: the member waited on its caller's goroutine and its
	// caller has gone while the batch ran. The run then owns the member
	// and its slot: it releases both when it ends, sending no answer.
	// Written under batcher.mu before the batch has run.
	handedOver bool
	// timer fires at the deadline of a member waiting on its caller's
	// goroutine (gather). Stopped, its channel empty, whenever the member
	// is free (see stopTimer).
	timer *time.Timer
}

type batchResult struct {
	resp *functions.Response
	err  error
	// alone asks the member to call Predict itself: the predictor has no
	// PredictBatch, so the members of a batch run concurrently, each on a
	// worker of its own, with its own context and panic recovery.
	alone bool
}

// gathersOnCaller reports whether req, a prediction, can wait for its
// batch on its caller's goroutine: batching is on and nothing but the
// batch runs for it (no WebAssembly stage, no KServe V1 body to convert
// with a catalog's metadata, which may load the model). Work of that kind
// runs on a worker, where a caller whose deadline passes does not wait
// for it.
func (r *Runtime) gathersOnCaller(req *functions.Request) bool {
	return r.batch != nil && r.stages == nil && (req.Protocol != functions.ProtocolKServeV1 || r.catalog == nil)
}

// invokeBatched is invoke for a prediction that gathersOnCaller.
func (r *Runtime) invokeBatched(caller context.Context, req *functions.Request) (*functions.Response, error) {
	if err := r.admit(req); err != nil {
		return nil, err
	}
	defer r.leave()
	w := waiter{r: r, caller: caller, admitted: time.Now()}
	defer w.end()
	// A slot free at once needs no context; waiting in the queue does.
	select {
	case r.slots <- struct{}{}:
	default:
		if err := r.acquire(w.context(), caller, req); err != nil {
			return nil, err
		}
	}
	r.m.inFlight.Inc()
	return r.batch.gather(&w, req)
}

// waiter is a batched prediction waiting on its caller's goroutine. Its
// context (predictionContext) is made only when something runs under it
// or needs it: a member that gets its answer from its batch never does,
// and a context with a deadline was a third of the allocations a batched
// request makes in the runtime. Its deadline is the context's, kept by the
// member's timer.
type waiter struct {
	r        *Runtime
	caller   context.Context
	admitted time.Time
	ctx      context.Context // nil until context is called
	cancel   context.CancelFunc
}

// context is the prediction's context, made on the first call.
func (w *waiter) context() context.Context {
	if w.ctx == nil {
		w.ctx, w.cancel = w.r.predictionContext(w.caller, w.admitted)
	}
	return w.ctx
}

// deadline is the prediction's deadline, as predictionContext sets it.
func (w *waiter) deadline() time.Time {
	if w.ctx != nil {
		d, _ := w.ctx.Deadline()
		return d
	}
	d := w.admitted.Add(w.r.limits.Timeout.D())
	if cd, ok := w.caller.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

// runOnWorker runs do for req on a worker, under the prediction's context.
func (w *waiter) runOnWorker(req *functions.Request, do job) (*functions.Response, error) {
	ctx := w.context() // before w.cancel is read: it makes it
	return w.r.runOnWorker(ctx, w.caller, w.cancel, req, w.admitted, do)
}

// end releases the context, if one was made.
func (w *waiter) end() {
	if w.cancel != nil {
		w.cancel()
	}
}

// gather is runOnWorker for a batched prediction waiting on its caller's
// goroutine: it joins req to a batch and waits for the answer, its
// deadline (504) or its caller's end (499), as runOnWorker waits for a
// worker. req holds a slot, which gather releases, or hands to the worker
// that runs Predict for it, or to the running batch it leaves.
func (b *batcher) gather(w *waiter, req *functions.Request) (*functions.Response, error) {
	r := b.r
	deadline := w.deadline()
	// The member keeps the caller's context for its values (a batch's run
	// has the first member's).
	bt, m := b.enqueue(w.caller, deadline, req)
	if m == nil {
		return w.runOnWorker(req, r.predictAlone)
	}
	m.timer.Reset(time.Until(deadline))
	var res batchResult
	select {
	case res = <-m.done:
		stopTimer(m.timer)
	case <-m.timer.C:
		// Past the deadline the context ends at once, as timed out.
		if err := b.gone(w, w.context(), bt, m); err != nil {
			return nil, err
		}
		res = <-m.done
	case <-w.caller.Done():
		stopTimer(m.timer)
		r.m.cancelled.Inc()
		if err := b.gone(w, w.caller, bt, m); err != nil {
			return nil, err
		}
		res = <-m.done
	}
	b.release(m)
	if res.alone {
		return w.runOnWorker(req, r.predictAlone)
	}
	r.releaseSlot()
	// Every prediction passes here or through runOnWorker: the first one
	// answered is the cold start's last phase.
	if !r.cold.predicted.Load() && res.err == nil {
		r.firstPrediction(req, time.Since(w.admitted))
	}
	ctx := w.caller
	if w.ctx != nil {
		ctx = w.ctx
	}
	return r.finish(ctx, req, result{res.resp, res.err})
}

// stopTimer stops t and leaves its channel empty, so that t can be reset
// for another member without a stale tick. A main module that asks for Go
// older than 1.23 (GODEBUG asynctimerchan=1) keeps a tick that fired just
// before Stop in the channel: it is drained.
func stopTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
}

// gone takes m, whose caller has gone or whose deadline has passed (ended
// says which), out of bt, and returns ended's error for the caller, at
// once. From a batch still open m is dropped, its slot released. From a
// batch that runs it is handed over (the run releases it and its slot
// when it ends), and the run is watched as an unbatched prediction past
// its caller is. When bt has run already, m's answer is on its way: gone
// returns nil and m waits for it.
func (b *batcher) gone(w *waiter, ended context.Context, bt *batch, m *member) error {
	r := b.r
	req := m.req // m is the run's once handed over
	if b.drop(bt, m) {
		b.release(m)
		r.releaseSlot()
		return r.deadlineError(ended, req)
	}
	b.mu.Lock()
	if bt.ran {
		b.mu.Unlock()
		return nil
	}
	m.handedOver = true
	b.leaveLocked(bt)
	if bt.finished == nil {
		bt.finished = make(chan result)
	}
	finished := bt.finished
	b.mu.Unlock()
	r.watchOverrun(w.context(), req, finished)
	return r.deadlineError(ended, req)
}

// predictAlone is the job of a batched request that runs by itself.
func (r *Runtime) predictAlone(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	return r.p.Predict(ctx, req)
}

// predict runs req, on a worker, through the pre stage, a batch and the
// post stage.
func (b *batcher) predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	s := b.r.stages
	if err := s.preprocess(ctx, req); err != nil {
		return nil, err
	}
	resp, err := b.join(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.postprocess(ctx, resp)
}

// join adds req to the open batch for its model and waits, on the worker
// that runs req's prediction, for its answer. A member whose caller goes
// (which ends ctx) is dropped from a batch still open; from one that runs
// it leaves, and waits for the run, as an unbatched prediction keeps its
// worker and slot until the predictor returns.
func (b *batcher) join(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	deadline, _ := ctx.Deadline() // runAdmitted sets one
	bt, m := b.enqueue(ctx, deadline, req)
	if m == nil {
		return b.r.p.Predict(ctx, req)
	}
	var res batchResult
	select {
	case res = <-m.done:
	case <-ctx.Done():
		if !b.drop(bt, m) {
			b.mu.Lock()
			b.leaveLocked(bt)
			b.mu.Unlock()
			<-m.done
		}
		b.release(m)
		return nil, context.Cause(ctx)
	}
	b.release(m)
	if res.alone {
		return b.r.p.Predict(ctx, req)
	}
	return res.resp, res.err
}

// enqueue adds a member for req, with ctx's values, to the open batch for
// its model, and starts the batch when req fills it. It returns a nil
// member when req is to run alone, at once: its deadline would pass
// before the batch closes.
func (b *batcher) enqueue(ctx context.Context, deadline time.Time, req *functions.Request) (*batch, *member) {
	now := time.Now()
	key := batchKey{req.Model, req.Version}

	b.mu.Lock()
	bt := b.pending[key]
	flushAt := now.Add(b.interval)
	if bt != nil {
		flushAt = bt.flushAt
	}
	if !deadline.IsZero() && deadline.Before(flushAt) {
		b.mu.Unlock()
		b.r.m.batchSize.Observe(1)
		b.r.m.batchWait.Observe(0)
		return nil, nil
	}
	m := b.getMember(ctx, req, now)
	if bt == nil {
		bt = &batch{b: b, key: key, flushAt: flushAt, members: make([]*member, 0, min(b.max, 64))}
		b.pending[key] = bt
		bt.timer = time.AfterFunc(b.interval, func() { b.expire(bt) })
	}
	bt.members = append(bt.members, m)
	full := len(bt.members) >= b.max
	if full {
		b.closeLocked(bt)
	}
	b.mu.Unlock()
	if full {
		b.start(bt)
	}
	return bt, m
}

// getMember returns a member for req, reused when one is free.
func (b *batcher) getMember(ctx context.Context, req *functions.Request, now time.Time) *member {
	m, _ := b.free.Get().(*member)
	if m == nil {
		m = &member{done: make(chan batchResult, 1), timer: time.NewTimer(time.Hour)}
		m.timer.Stop()
	}
	m.ctx, m.req, m.arrived = ctx, req, now
	return m
}

// release makes m free for another request. Only m's owner calls it: its
// goroutine after m has received its one message or left an open batch,
// or the run for a member handed over to it; nothing is sent to m
// afterwards.
func (b *batcher) release(m *member) {
	if len(m.done) != 0 {
		return // never reuse a channel that holds an answer
	}
	m.ctx, m.req, m.handedOver = nil, nil, false
	b.free.Put(m)
}

// drop removes m from bt if bt has not closed yet, and reports whether it
// did. An emptied batch is discarded.
func (b *batcher) drop(bt *batch, m *member) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bt.closed {
		return false
	}
	for i, x := range bt.members {
		if x == m {
			bt.members = append(bt.members[:i], bt.members[i+1:]...)
			break
		}
	}
	if len(bt.members) == 0 {
		bt.timer.Stop()
		bt.closed = true
		delete(b.pending, bt.key)
	}
	return true
}

// leaveLocked counts a member of the closed batch bt as gone; the last to
// go cancels the run. b.mu must be held.
func (b *batcher) leaveLocked(bt *batch) {
	if bt.live--; bt.live == 0 && bt.cancel != nil {
		bt.cancel()
	}
}

// closeLocked stops bt from taking members. b.mu must be held; the closer
// then starts bt.
func (b *batcher) closeLocked(bt *batch) {
	bt.closed = true
	bt.timer.Stop()
	bt.live = len(bt.members)
	if b.pending[bt.key] == bt {
		delete(b.pending, bt.key)
	}
}

// expire closes bt when its interval ends and starts it. It runs on the
// timer's own goroutine, a fresh one: the batch runs on a worker, whose
// stack has grown already.
func (b *batcher) expire(bt *batch) {
	b.mu.Lock()
	if bt.closed {
		b.mu.Unlock()
		return
	}
	b.closeLocked(bt)
	b.mu.Unlock()
	b.start(bt)
}

// start runs the closed batch bt: on a worker when it calls PredictBatch,
// so that no member's goroutine runs predictor code; at once without
// PredictBatch, when the run only tells each member to predict alone.
func (b *batcher) start(bt *batch) {
	if b.bp == nil {
		bt.run()
		return
	}
	b.r.work.run(bt)
}

// run is the batch's task on a worker.
func (bt *batch) run() { bt.b.run(bt) }

// run makes the one call for a closed batch and hands every member its
// answer; it releases the members handed over to it, and their slots. It
// must not touch a member once the member has its answer: the member may
// be reused at once.
func (b *batcher) run(bt *batch) {
	now := time.Now()
	members := bt.members
	b.r.m.batchSize.Observe(float64(len(members)))
	for _, m := range members {
		b.r.m.batchWait.Observe(now.Sub(m.arrived).Seconds())
	}
	var reqs []*functions.Request
	var resps []*functions.Response
	var err error
	if b.bp != nil {
		// The run serves members with different deadlines: it is
		// cancelled when every member has gone.
		ctx, cancel := b.batchContext(members)
		b.mu.Lock()
		if bt.live == 0 {
			cancel()
		}
		bt.cancel = cancel
		b.mu.Unlock()

		reqs = make([]*functions.Request, len(members))
		for i, m := range members {
			reqs[i] = m.req
		}
		resps, err = b.safePredictBatch(ctx, reqs)
		cancel()
		if err == nil && len(resps) != len(reqs) {
			b.r.log.Error("PredictBatch returned the wrong number of responses", "requests", len(reqs), "responses", len(resps))
			err = fmt.Errorf("runtime: PredictBatch returned %d responses for %d requests", len(resps), len(reqs))
		}
	}

	b.mu.Lock()
	bt.ran = true
	finished := bt.finished
	b.mu.Unlock()
	for i, m := range members {
		if m.handedOver {
			b.release(m)
			b.r.releaseSlot()
			continue
		}
		res := batchResult{alone: b.bp == nil}
		switch {
		case b.bp == nil:
		case err != nil:
			res.err = memberError(reqs[i], err)
		default:
			res.resp = resps[i]
		}
		m.done <- res
	}
	if finished != nil {
		close(finished)
	}
}

// errBatchPanic marks a PredictBatch that panicked.
var errBatchPanic = errors.New("runtime: the predictor panicked in PredictBatch")

// memberError is the error one member sees when the whole batch failed.
// Each member gets its own copy, so nothing downstream shares it; an error
// without a status is logged by the runtime's finish step once per member,
// with that member's request id.
func memberError(req *functions.Request, err error) error {
	if errors.Is(err, errBatchPanic) {
		return &functions.Error{Status: http.StatusInternalServerError,
			Message: "internal error: the predictor panicked (request id " + req.ID + ")", Err: err}
	}
	var fe *functions.Error
	if errors.As(err, &fe) {
		c := *fe
		return &c
	}
	return err
}

// batchContext is the context of a batch's run: the first member's values,
// cancelled when every member has gone. It has no deadline of its own, so
// a run is never stopped while a member still waits for it.
func (b *batcher) batchContext(members []*member) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.WithoutCancel(members[0].ctx))
}

// safePredictBatch calls PredictBatch, turning a panic into a 500 for the
// whole batch: the process keeps serving.
func (b *batcher) safePredictBatch(ctx context.Context, reqs []*functions.Request) (resps []*functions.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			ids := make([]string, len(reqs))
			for i, r := range reqs {
				ids[i] = r.ID
			}
			b.r.log.Error("predictor panicked in PredictBatch", "request_ids", ids, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resps, err = nil, errBatchPanic
		}
	}()
	return b.bp.PredictBatch(ctx, reqs)
}
