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
// Each member is a request that already holds its own concurrency slot:
// the runtime's run goroutine calls predict and waits in it, so
// max_concurrency still bounds the members waiting and running.
//
// A batch runs on the goroutine of one of its members, its leader: the
// member that fills it, or, when the interval ends first, its oldest
// member, which the timer wakes. The leader was going to wait for the
// batch anyway and its goroutine has the stack the predictor needs, so no
// goroutine is woken or started just to run the batch; the leader hands
// every other member its answer and keeps its own.
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
	key     batchKey
	flushAt time.Time
	timer   *time.Timer
	members []*member // guarded by batcher.mu until the batch is closed
	closed  bool

	// Once closed: live counts the members still waiting for the answer;
	// when the last one leaves, the run is cancelled.
	live   int
	cancel context.CancelFunc
}

// member is one request in a batch.
type member struct {
	ctx     context.Context
	req     *functions.Request
	arrived time.Time
	// done receives at most one message while the member is in a batch:
	// its answer, or lead (it is to run the batch). Buffered, so a sender
	// never waits for a member that has gone; empty again once the member
	// has received, so the member can be reused.
	done chan batchResult
}

type batchResult struct {
	resp *functions.Response
	err  error
	// alone asks the member to call Predict itself: the predictor has no
	// PredictBatch, so the members of a batch run concurrently, each in its
	// own goroutine, with its own context and panic recovery.
	alone bool
	// lead asks the member to run its batch (the interval has ended).
	lead bool
}

// predict runs req through the pre stage, a batch and the post stage.
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

// join adds req to the open batch for its model and waits for its answer;
// the member that fills the batch runs it. A request whose deadline would
// pass before the batch closes runs alone, at once.
func (b *batcher) join(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	now := time.Now()
	key := batchKey{req.Model, req.Version}

	b.mu.Lock()
	bt := b.pending[key]
	flushAt := now.Add(b.interval)
	if bt != nil {
		flushAt = bt.flushAt
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(flushAt) {
		b.mu.Unlock()
		b.r.m.batchSize.Observe(1)
		b.r.m.batchWait.Observe(0)
		return b.r.p.Predict(ctx, req)
	}
	m := b.getMember(ctx, req, now)
	if bt == nil {
		bt = &batch{key: key, flushAt: flushAt, members: make([]*member, 0, min(b.max, 64))}
		b.pending[key] = bt
		bt.timer = time.AfterFunc(b.interval, func() { b.expire(bt) })
	}
	bt.members = append(bt.members, m)
	full := len(bt.members) >= b.max
	if full {
		b.closeLocked(bt)
	}
	b.mu.Unlock()

	var res batchResult
	left := false
	if full {
		res = b.lead(bt, m, false)
	} else {
		select {
		case res = <-m.done:
		case <-ctx.Done():
			if b.drop(bt, m) {
				b.release(m)
				return nil, context.Cause(ctx)
			}
			// The batch has closed: it runs, or is about to, perhaps
			// on this goroutine (the timer may have made this member
			// the leader). Wait for it, as an unbatched prediction
			// keeps its slot until the predictor returns. If every
			// member has gone, leaving cancels the run.
			b.leave(bt)
			left = true
			res = <-m.done
		}
		if res.lead {
			res = b.lead(bt, m, left)
		}
	}
	b.release(m)
	if left {
		return nil, context.Cause(ctx)
	}
	if res.alone {
		return b.r.p.Predict(ctx, req)
	}
	return res.resp, res.err
}

// getMember returns a member for req, reused when one is free.
func (b *batcher) getMember(ctx context.Context, req *functions.Request, now time.Time) *member {
	m, _ := b.free.Get().(*member)
	if m == nil {
		m = &member{done: make(chan batchResult, 1)}
	}
	m.ctx, m.req, m.arrived = ctx, req, now
	return m
}

// release makes m free for another request. Only its own goroutine calls
// it, after m has received its one message or left an open batch, so
// nothing is sent to m afterwards.
func (b *batcher) release(m *member) {
	if len(m.done) != 0 {
		return // never reuse a channel that holds an answer
	}
	m.ctx, m.req = nil, nil
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

func (b *batcher) leave(bt *batch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bt.live--; bt.live == 0 && bt.cancel != nil {
		bt.cancel()
	}
}

// closeLocked stops bt from taking members. b.mu must be held.
func (b *batcher) closeLocked(bt *batch) {
	bt.closed = true
	bt.timer.Stop()
	bt.live = len(bt.members)
	if b.pending[bt.key] == bt {
		delete(b.pending, bt.key)
	}
}

// expire closes bt when its interval ends and wakes its oldest member to
// run it. It runs on the timer's own goroutine, which does nothing else:
// the batch runs on the leader's.
func (b *batcher) expire(bt *batch) {
	b.mu.Lock()
	if bt.closed {
		b.mu.Unlock()
		return
	}
	b.closeLocked(bt)
	leader := bt.members[0]
	b.mu.Unlock()
	leader.done <- batchResult{lead: true}
}

// lead runs the closed batch bt on the calling goroutine, its member
// leader's, and returns leader's own answer. left says whether leader's
// caller has gone already; if it goes while the batch runs, that counts as
// leaving, as for a member waiting.
func (b *batcher) lead(bt *batch, leader *member, left bool) batchResult {
	if !left && b.bp != nil {
		stop := context.AfterFunc(leader.ctx, func() { b.leave(bt) })
		defer stop()
	}
	return b.run(bt, leader)
}

// run makes the one call for a closed batch, hands every member but leader
// its answer and returns leader's. It must not touch a member once the
// member has its answer: the member may be reused at once.
func (b *batcher) run(bt *batch, leader *member) batchResult {
	now := time.Now()
	members := bt.members
	b.r.m.batchSize.Observe(float64(len(members)))
	for _, m := range members {
		b.r.m.batchWait.Observe(now.Sub(m.arrived).Seconds())
	}
	if b.bp == nil {
		for _, m := range members {
			if m != leader {
				m.done <- batchResult{alone: true}
			}
		}
		return batchResult{alone: true}
	}

	// The run serves members with different deadlines: it is cancelled
	// when every member has gone.
	ctx, cancel := b.batchContext(members)
	defer cancel()
	b.mu.Lock()
	if bt.live == 0 {
		cancel()
	}
	bt.cancel = cancel
	b.mu.Unlock()

	reqs := make([]*functions.Request, len(members))
	for i, m := range members {
		reqs[i] = m.req
	}
	resps, err := b.safePredictBatch(ctx, reqs)
	if err == nil && len(resps) != len(reqs) {
		b.r.log.Error("PredictBatch returned the wrong number of responses", "requests", len(reqs), "responses", len(resps))
		err = fmt.Errorf("runtime: PredictBatch returned %d responses for %d requests", len(resps), len(reqs))
	}
	var own batchResult
	for i, m := range members {
		res := batchResult{}
		if err != nil {
			res.err = memberError(reqs[i], err)
		} else {
			res.resp = resps[i]
		}
		if m == leader {
			own = res
			continue
		}
		m.done <- res
	}
	return own
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
