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
type batcher struct {
	r        *Runtime
	bp       functions.BatchPredictor // nil: one Predict per member
	max      int
	interval time.Duration

	mu      sync.Mutex
	pending map[string]*batch // open batches, by model and version
}

func newBatcher(r *Runtime) *batcher {
	b := &batcher{
		r:        r,
		max:      r.cfg.Batching.MaxBatchSize,
		interval: r.cfg.Batching.BatchInterval.D(),
		pending:  map[string]*batch{},
	}
	if b.interval <= 0 {
		b.interval = DefaultBatchInterval
	}
	b.bp, _ = r.p.(functions.BatchPredictor)
	return b
}

// batch is a group of members that run together.
type batch struct {
	key     string
	opened  time.Time
	flushAt time.Time
	timer   *time.Timer
	members []*member // guarded by batcher.mu until the batch is closed
	closed  bool

	// Once closed: live counts the members still waiting for the answer;
	// when the last one leaves, the run is cancelled.
	live   int
	cancel context.CancelFunc
}

// member is one request in a batch. done is buffered so the batch never
// blocks on a member that has gone.
type member struct {
	ctx     context.Context
	req     *functions.Request
	arrived time.Time
	done    chan batchResult
}

type batchResult struct {
	resp *functions.Response
	err  error
	// alone asks the member to call Predict itself: the predictor has no
	// PredictBatch, so the members of a batch run concurrently, each in its
	// own goroutine, with its own context and panic recovery.
	alone bool
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

// join adds req to the open batch for its model and waits for its answer.
// A request whose deadline would pass before the batch closes runs alone,
// at once.
func (b *batcher) join(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	now := time.Now()
	m := &member{ctx: ctx, req: req, arrived: now, done: make(chan batchResult, 1)}
	key := req.Model + "\x00" + req.Version

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
	if bt == nil {
		bt = &batch{key: key, opened: now, flushAt: flushAt}
		b.pending[key] = bt
		bt.timer = time.AfterFunc(b.interval, func() { b.flush(bt) })
	}
	bt.members = append(bt.members, m)
	full := len(bt.members) >= b.max
	if full {
		b.closeLocked(bt)
	}
	b.mu.Unlock()
	if full {
		// Not on this goroutine: every member, this one too, must be free
		// to notice that its caller has gone.
		b.r.work.do(func() { b.run(bt) })
	}

	var res batchResult
	select {
	case res = <-m.done:
	case <-ctx.Done():
		if b.drop(bt, m) {
			return nil, context.Cause(ctx)
		}
		// The batch is running: wait for it, as an unbatched prediction
		// keeps its slot until the predictor returns. If every member has
		// gone, leaving cancels the run.
		b.leave(bt)
		<-m.done
		return nil, context.Cause(ctx)
	}
	if res.alone {
		return b.r.p.Predict(ctx, req)
	}
	return res.resp, res.err
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

// flush closes and runs bt when its interval ends.
func (b *batcher) flush(bt *batch) {
	b.mu.Lock()
	if bt.closed {
		b.mu.Unlock()
		return
	}
	b.closeLocked(bt)
	b.mu.Unlock()
	b.run(bt)
}

// run makes the one call for a closed batch and hands every member its
// answer.
func (b *batcher) run(bt *batch) {
	now := time.Now()
	members := bt.members
	b.r.m.batchSize.Observe(float64(len(members)))
	for _, m := range members {
		b.r.m.batchWait.Observe(now.Sub(m.arrived).Seconds())
	}
	if b.bp == nil {
		for _, m := range members {
			m.done <- batchResult{alone: true}
		}
		return
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
	for i, m := range members {
		if err != nil {
			m.done <- batchResult{err: memberError(m.req, err)}
			continue
		}
		m.done <- batchResult{resp: resps[i]}
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
