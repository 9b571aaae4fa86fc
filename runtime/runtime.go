package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// Runtime is the engine between a carrier and a predictor. It assigns
// request ids, enforces the body limit, the per-request deadline and the
// bound on concurrent and queued requests, recovers panics, counts and times
// every request, and drains in-flight work on shutdown. Every carrier hands
// it requests through the adapters.Engine interface, so all of this behaves
// the same whatever delivered the request.
type Runtime struct {
	p      functions.Predictor
	cfg    Config
	limits Limits
	log    *slog.Logger
	m      *metrics
	// cold records this process's start phase by phase (coldstart.go).
	cold coldStart
	opts options

	// catalog is p's list of the models it serves; without one the
	// function serves ownModel, its own name (see models.go).
	catalog  oip.Catalog
	ownModel []string

	stages  *stages       // WebAssembly pre/post stages, nil without any
	batch   *batcher      // nil unless batching.max_batch_size > 1
	slots   chan struct{} // one token per running prediction
	work    *workers      // the goroutines predictions run on
	waiting atomic.Int64  // requests queued for a slot

	ready    atomic.Bool
	draining atomic.Bool
	initErr  atomic.Pointer[error]

	async *predictions // background predictions (async.go)

	overrunning atomic.Int64          // predictions running past their deadline
	replaceErr  atomic.Pointer[error] // why the process must be replaced
	replacing   chan struct{}         // closed once it must be
	replaceOnce sync.Once

	mu       sync.Mutex
	inflight int           // admitted requests not yet finished
	idle     chan struct{} // closed when draining and inflight reaches 0
	closed   bool
}

// Option configures a Runtime.
type Option func(*options)

type options struct {
	logger            *slog.Logger
	readHeaderTimeout time.Duration
}

// WithLogger sets the logger. The default writes JSON to stderr at the
// level named by $CORTEX_LOG_LEVEL (debug, info, warn, error; default info).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithReadHeaderTimeout bounds how long a client may take to send its
// request headers (default 10s): a client that trickles them is cut off.
func WithReadHeaderTimeout(d time.Duration) Option {
	return func(o *options) { o.readHeaderTimeout = d }
}

// New returns a Runtime for p. It does not call Init: Start does.
func New(p functions.Predictor, cfg Config, opts ...Option) (*Runtime, error) {
	if p == nil {
		return nil, errors.New("runtime: nil predictor")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	for _, env := range []string{"K_SERVICE", "AWS_LAMBDA_FUNCTION_NAME"} {
		if cfg.Name == "" {
			cfg.Name = os.Getenv(env)
		}
	}
	if cfg.Name == "" {
		cfg.Name = "function"
	}
	if o.logger == nil {
		o.logger = DefaultLogger()
	}
	if o.readHeaderTimeout <= 0 {
		o.readHeaderTimeout = 10 * time.Second
	}
	labels := prometheus.Labels{"function": cfg.Name}
	if rev := os.Getenv("K_REVISION"); rev != "" {
		labels["revision"] = rev
	}
	r := &Runtime{
		p:      p,
		cfg:    cfg,
		limits: cfg.Limits.WithDefaults(),
		log:    o.logger.With("function", cfg.Name),
		opts:   o,
		m:      newMetrics(labels),
		idle:   make(chan struct{}),
		work:   newWorkers(),

		replacing: make(chan struct{}),
	}
	r.async = newPredictions(r)
	r.catalog, _ = p.(oip.Catalog)
	r.ownModel = []string{cfg.Name}
	r.slots = make(chan struct{}, r.limits.MaxConcurrency)
	if cfg.Batching.MaxBatchSize > 1 {
		r.batch = newBatcher(r)
	}
	return r, nil
}

// DefaultLogger is the logger a function uses unless told otherwise: JSON on
// stderr, at the level in $CORTEX_LOG_LEVEL, with the Knative service and
// revision when they are set.
func DefaultLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("CORTEX_LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	l := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for _, k := range []string{"K_SERVICE", "K_REVISION", "K_CONFIGURATION"} {
		if v := os.Getenv(k); v != "" {
			l = l.With(k, v)
		}
	}
	return l
}

// Start initialises the predictor (when it implements functions.Initializer)
// and marks the runtime ready. It records the load time. An Init error is
// returned wrapped with the function's name and leaves the runtime not ready.
func (r *Runtime) Start(ctx context.Context) error {
	start := time.Now()
	if err := r.fetchModels(ctx); err != nil { // models named by reference (models_fetch.go)
		return err
	}
	st, err := loadStages(ctx, &r.cfg, r.limits)
	if err != nil {
		err = fmt.Errorf("initialising function %q: %w", r.cfg.Name, err)
		r.initErr.Store(&err)
		r.log.Error("init failed", "err", err)
		return err
	}
	if st != nil {
		st.collect(r.m.reg, r.m.labels)
	}
	r.stages = st
	var initTook time.Duration // Init's total: the load and init phases
	if in, ok := r.p.(functions.Initializer); ok {
		cfg := functions.Config{
			Name:   r.cfg.Name,
			Dir:    r.cfg.Dir,
			Model:  r.cfg.Path(r.cfg.Predictor.Model),
			Values: r.cfg.Predictor.Values,
			GPU:    r.cfg.GPU,
		}
		initStart := time.Now()
		err := safeInit(ctx, in, cfg)
		initTook = time.Since(initStart)
		if err != nil {
			err = errors.Join(fmt.Errorf("initialising function %q: %w", r.cfg.Name, err), r.stages.close(ctx))
			r.initErr.Store(&err)
			r.log.Error("init failed", "err", err)
			return err
		}
	}
	took := time.Since(start)
	cold := r.started(initTook)
	r.m.loadTime.Set(took.Seconds())
	r.ready.Store(true)
	r.m.ready.Set(1)
	r.log.Info("ready", "load_time", took.String(), cold,
		"max_concurrency", r.limits.MaxConcurrency, "max_queue", r.limits.MaxQueue,
		"timeout", r.limits.Timeout.String(), "overrun_grace", r.limits.OverrunGrace.String(), "max_body", r.limits.MaxBody)
	return nil
}

func safeInit(ctx context.Context, in functions.Initializer, cfg functions.Config) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic in Init: %v\n%s", v, debug.Stack())
		}
	}()
	return in.Init(ctx, cfg)
}

// Name returns the function's name.
func (r *Runtime) Name() string { return r.cfg.Name }

// MaxBody returns the largest request body accepted, in bytes.
func (r *Runtime) MaxBody() int64 { return r.limits.MaxBody }

// Limits returns the limits in force, defaults filled in.
func (r *Runtime) Limits() Limits { return r.limits }

// Ready reports whether the predictor has initialised and the runtime is not
// draining.
func (r *Runtime) Ready() bool { return r.ready.Load() && !r.draining.Load() }

// InitError returns the error Start failed with, if any.
func (r *Runtime) InitError() error {
	if p := r.initErr.Load(); p != nil {
		return *p
	}
	return nil
}

// MetricsHandler serves the function's metrics in the Prometheus text format.
func (r *Runtime) MetricsHandler() http.Handler { return r.m.handler() }

// Logger returns the runtime's logger, labelled with the function's name.
func (r *Runtime) Logger() *slog.Logger { return r.log }

// Invoke runs one prediction through the limits and counts its answer in
// cortex_requests_total. It never panics; a non-nil error is a
// *functions.Error whose status and message are safe to send to the
// caller.
func (r *Runtime) Invoke(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	resp, err := r.answer(ctx, req)
	r.m.countStatus(statusOf(resp, err))
	return resp, err
}

// answer is Invoke without counting the answer by status: the HTTP
// handler counts what it sends (countAnswers), its own refusals too, so
// its carriers call this.
func (r *Runtime) answer(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	start := time.Now()
	if req.ID == "" {
		req.ID = NewRequestID()
	}
	var resp *functions.Response
	// Not ready comes first: before Init the function knows neither its
	// models (a multi-model predictor lists none yet) nor their tensors.
	err := r.starting(req.ID)
	if err == nil {
		err = r.route(req)
	}
	if err == nil {
		if r.gathersOnCaller(req) {
			resp, err = r.invokeBatched(ctx, req)
		} else {
			resp, err = r.invoke(ctx, req, r.serve)
		}
	}
	r.m.latency.Observe(time.Since(start).Seconds())
	return resp, err
}

// countedEngine is the Runtime as Handler's carriers see it: the handler
// counts every answer it sends, so Invoke must not count it again.
type countedEngine struct{ *Runtime }

func (e countedEngine) Invoke(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	return e.answer(ctx, req)
}

func statusOf(resp *functions.Response, err error) int {
	if err != nil {
		return functions.StatusOf(err)
	}
	return resp.StatusCode()
}

// starting is the 503 every model route answers until Init has succeeded:
// with Retry-After while the model loads, and pointing at the log when
// Init failed.
func (r *Runtime) starting(requestID string) error {
	if r.ready.Load() {
		return nil
	}
	r.m.rejected.WithLabelValues("not_ready").Inc()
	msg := "function is starting: the model is still loading"
	if err := r.InitError(); err != nil {
		msg = "function failed to start; see its log"
		if requestID != "" {
			msg += " (request id " + requestID + ")"
		}
	}
	return &functions.Error{Status: http.StatusServiceUnavailable, Message: msg, RetryAfter: time.Second}
}

// job is the work a request does once admitted: it runs on the goroutine
// that holds the request's concurrency slot, under its deadline, with
// panics recovered (see invoke). serve, a prediction, is one; describing a
// model, which may load it, is another.
type job func(ctx context.Context, req *functions.Request) (*functions.Response, error)

// invoke runs do for req through the limits: the body limit, admission
// (refused while draining; Shutdown waits for what it admitted), the
// deadline (limits.timeout: 504 when do overruns it), a concurrency slot
// (limits.max_concurrency, waiting in the bounded queue) and panic
// recovery (a 500 with the request id). Everything a request makes its
// predictor do, its catalog's too, runs inside do.
func (r *Runtime) invoke(ctx context.Context, req *functions.Request, do job) (*functions.Response, error) {
	if err := r.admit(req); err != nil {
		return nil, err
	}
	defer r.leave()
	return r.runAdmitted(ctx, req, do)
}

// admit checks the body limit and admits req unless the runtime is
// draining; an admitted request must call leave when it is answered.
func (r *Runtime) admit(req *functions.Request) error {
	if int64(len(req.Body)) > r.limits.MaxBody {
		r.m.rejected.WithLabelValues("body_too_large").Inc()
		return adapters.TooLarge(int64(len(req.Body)), r.limits.MaxBody)
	}
	if !r.enter() {
		r.m.rejected.WithLabelValues("shutting_down").Inc()
		msg := "function is shutting down; retry on another instance"
		if r.Live() != nil {
			msg = "function is being replaced (a prediction overran its deadline); retry on another instance"
		}
		return &functions.Error{Status: http.StatusServiceUnavailable, Message: msg, RetryAfter: time.Second}
	}
	return nil
}

// runAdmitted is invoke's part after admission (enter), which an async
// prediction (async.go) runs in the background once admitted at
// submission: the deadline, a slot (waiting in the queue), the run on a
// worker (panics recovered) and the answer, or the error of a prediction
// cancelled (its caller gone) or past its deadline.
func (r *Runtime) runAdmitted(ctx context.Context, req *functions.Request, do job) (*functions.Response, error) {
	caller := ctx
	admitted := time.Now()
	ctx, cancel := r.predictionContext(caller, admitted)
	defer cancel()
	if err := r.acquire(ctx, caller, req); err != nil {
		return nil, err
	}
	r.m.inFlight.Inc()
	return r.runOnWorker(ctx, caller, cancel, req, admitted, do)
}

// predictionContext is the context a prediction admitted at admitted runs
// under. It ends at limits.timeout, or at the caller's own deadline when
// that is sooner, and when the caller goes away. It is not derived from
// the caller's context: that would register it in the caller's (net/http's
// request context's) map of children, a map allocated for every request,
// the largest allocation of the request path. invoke watches the caller
// itself instead (caller.Done in runOnWorker, in acquire and in a batch's
// wait) and cancels the prediction's context when it ends, which is all
// that registration did. The caller's values stay.
func (r *Runtime) predictionContext(caller context.Context, admitted time.Time) (context.Context, context.CancelFunc) {
	deadline := admitted.Add(r.limits.Timeout.D())
	if d, ok := caller.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return context.WithDeadline(context.WithoutCancel(caller), deadline)
}

// runOnWorker runs do on a worker for a request that holds a concurrency
// slot (counted in flight), and waits for its answer, its deadline or its
// caller's end; cancel cancels ctx, the prediction's context.
func (r *Runtime) runOnWorker(ctx, caller context.Context, cancel context.CancelFunc, req *functions.Request, admitted time.Time, do job) (*functions.Response, error) {
	// The slot is released by the goroutine that runs the predictor, when
	// the predictor returns: a prediction that outlives its deadline keeps
	// its slot, so the bound on concurrent work stays true.
	c := calls.Get().(*call)
	c.r, c.ctx, c.req, c.do = r, ctx, req, do
	done := c.done
	r.work.run(c)
	select {
	case res := <-done:
		// The worker sent its last word: the call can serve another
		// request. (Not on the paths below, where it is still running.)
		*c = call{done: done}
		calls.Put(c)
		// Every carrier's prediction, sync, streamed or async, passes
		// here: the first one answered is the cold start's last phase.
		if !r.cold.predicted.Load() && res.err == nil {
			r.firstPrediction(req, time.Since(admitted))
		}
		return r.finish(ctx, req, res)
	case <-ctx.Done():
		r.watchOverrun(ctx, req, done)
		return nil, r.deadlineError(ctx, req)
	case <-caller.Done():
		cancel() // the prediction's context ends with its caller's
		r.m.cancelled.Inc()
		r.watchOverrun(ctx, req, done)
		return nil, r.deadlineError(caller, req)
	}
}

// call is one job handed to a worker (see invoke). Calls are pooled, with
// their done channel, which is empty again once invoke has received the
// result: a closure and a channel per request were two allocations.
type call struct {
	r    *Runtime
	ctx  context.Context
	req  *functions.Request
	do   job
	done chan result // buffered: the worker never waits to hand over
}

var calls = sync.Pool{New: func() any { return &call{done: make(chan result, 1)} }}

type result struct {
	resp *functions.Response
	err  error
}

// run runs the job on a worker. It reads c only before it sends the
// result: once invoke has it, c may be serving another request.
func (c *call) run() {
	r, ctx, req, do, done := c.r, c.ctx, c.req, c.do, c.done
	defer r.releaseSlot()
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("predictor panicked", "request_id", req.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			done <- result{err: &functions.Error{Status: http.StatusInternalServerError,
				Message: "internal error: the predictor panicked (request id " + req.ID + ")"}}
		}
	}()
	resp, err := do(ctx, req)
	done <- result{resp, err}
}

// predict runs one prediction: through a batch when batching is on, else
// through the stages and the predictor.
func (r *Runtime) predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	if r.batch != nil {
		return r.batch.predict(ctx, req)
	}
	return r.stages.predict(ctx, r.p, req)
}

func (r *Runtime) finish(ctx context.Context, req *functions.Request, res result) (*functions.Response, error) {
	if res.err == nil {
		if res.resp == nil {
			res.resp = &functions.Response{Status: http.StatusNoContent}
		}
		return res.resp, nil
	}
	var fe *functions.Error
	if errors.As(res.err, &fe) && fe.Status >= 400 && fe.Status <= 599 {
		if fe.Status >= 500 {
			r.log.Error("prediction failed", "request_id", req.ID, "status", fe.Status, "err", res.err)
		}
		return nil, fe
	}
	if ctx.Err() != nil && errors.Is(res.err, ctx.Err()) {
		return nil, r.deadlineError(ctx, req)
	}
	// An error without a status: its text may hold internals, so it goes to
	// the log and the caller gets the request id to find it.
	r.log.Error("prediction failed", "request_id", req.ID, "err", res.err)
	return nil, &functions.Error{Status: http.StatusInternalServerError,
		Message: "internal error (request id " + req.ID + ")", Err: res.err}
}

func (r *Runtime) deadlineError(ctx context.Context, req *functions.Request) error {
	if timedOut(ctx) {
		r.log.Warn("prediction timed out", "request_id", req.ID, "timeout", r.limits.Timeout.String())
		return &functions.Error{Status: http.StatusGatewayTimeout,
			Message: fmt.Sprintf("prediction did not finish within %s (limits.timeout in cortex.yaml, or the caller's deadline)", r.limits.Timeout),
			Err:     context.DeadlineExceeded}
	}
	// The caller went away. 499 is nginx's "client closed request": nobody
	// reads the answer, but logs and metrics should not call it a 5xx.
	return &functions.Error{Status: 499, Message: "client closed the request", Err: ctx.Err()}
}

// timedOut reports whether ctx ended at its deadline rather than because
// its caller went away.
func timedOut(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// acquire takes a concurrency slot, waiting in the bounded queue when all
// are busy. A full queue is a 503 with Retry-After, never unbounded memory.
//
// A request that never got a slot never ran, so running out of time in the
// queue is the function being at capacity, a 503 with Retry-After that a
// client or the platform may retry, not the 504 of a prediction that was too
// slow. And when predictions past their deadline hold every slot (they keep
// theirs until the predictor returns, which a runaway never does), a slot is
// not coming back soon: the request is refused at once rather than queued
// to wait for its own deadline.
//
// ctx is the prediction's context, caller the context it has its values
// from, whose end (the caller going away) ends the wait too.
func (r *Runtime) acquire(ctx, caller context.Context, req *functions.Request) error {
	select {
	case r.slots <- struct{}{}:
		return nil
	default:
	}
	if over := r.Overrunning(); over >= r.limits.MaxConcurrency {
		r.m.rejected.WithLabelValues("overrun").Inc()
		return &functions.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Message: fmt.Sprintf("function is at capacity: all %d prediction slots are held by predictions past their deadline (limits.max_concurrency); retry later",
				r.limits.MaxConcurrency)}
	}
	if n := r.waiting.Add(1); n > int64(r.limits.MaxQueue) {
		r.waiting.Add(-1)
		r.m.rejected.WithLabelValues("queue_full").Inc()
		return &functions.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Message: fmt.Sprintf("function is at capacity: %d predictions running and %d queued (limits.max_concurrency, limits.max_queue); retry later",
				r.limits.MaxConcurrency, r.limits.MaxQueue)}
	}
	r.m.queued.Inc()
	defer func() {
		r.waiting.Add(-1)
		r.m.queued.Dec()
	}()
	select {
	case r.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
	case <-caller.Done():
	}
	r.m.rejected.WithLabelValues("queue_timeout").Inc()
	if !timedOut(ctx) && !timedOut(caller) {
		return r.deadlineError(caller, req) // the caller went away
	}
	return &functions.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second, Err: context.DeadlineExceeded,
		Message: fmt.Sprintf("function is at capacity: no prediction slot came free within %s (limits.timeout; limits.max_concurrency %d, %d of them held by predictions past their deadline); retry later",
			r.limits.Timeout, r.limits.MaxConcurrency, r.Overrunning())}
}

// releaseSlot gives back the concurrency slot of a prediction that has
// finished (acquire took it; the prediction counted in flight since).
func (r *Runtime) releaseSlot() {
	<-r.slots
	r.m.inFlight.Dec()
}

// enter admits a request unless the runtime is draining.
func (r *Runtime) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining.Load() {
		return false
	}
	r.inflight++
	return true
}

func (r *Runtime) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
	if r.inflight == 0 && r.draining.Load() && !r.closed {
		r.closed = true
		close(r.idle)
	}
}

// Shutdown stops admitting requests (new ones get 503 and Ready turns
// false), waits for the admitted ones to finish or for ctx to end, then
// closes the predictor. It returns ctx's error when requests were still
// running at the bound.
func (r *Runtime) Shutdown(ctx context.Context) error {
	err := r.awaitIdle(ctx)
	r.work.stop()
	if c, ok := r.p.(functions.Closer); ok {
		if cerr := c.Close(); cerr != nil {
			r.log.Error("closing predictor", "err", cerr)
			err = errors.Join(err, cerr)
		}
	}
	if serr := r.stages.close(context.Background()); serr != nil {
		r.log.Error("closing wasm stages", "err", serr)
		err = errors.Join(err, serr)
	}
	removeModelLinks() // the predictor, which opened the models, is closed
	return err
}

// stopAdmitting makes every new request a 503 and Ready false, and
// returns how many admitted requests are still running.
func (r *Runtime) stopAdmitting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.draining.Store(true)
	r.m.ready.Set(0)
	if r.inflight == 0 && !r.closed {
		r.closed = true
		close(r.idle)
	}
	return r.inflight
}

// awaitIdle stops admitting requests and waits for the admitted ones to
// finish, or for ctx to end. A prediction whose caller has had its 504
// is not waited for: nobody waits for its answer.
func (r *Runtime) awaitIdle(ctx context.Context) error {
	r.log.Info("draining", "in_flight", r.stopAdmitting(), "overrunning", r.Overrunning())
	select {
	case <-r.idle:
		return nil
	case <-ctx.Done():
		err := fmt.Errorf("shutdown: requests still running after the drain bound: %w", ctx.Err())
		r.log.Warn("drain bound reached", "err", err)
		return err
	}
}

// NewRequestID returns a random 128-bit id in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	_ adapters.Engine  = (*Runtime)(nil)
	_ adapters.Catalog = (*Runtime)(nil)
	_ adapters.Engine  = countedEngine{}
	_ adapters.Catalog = countedEngine{}
)
