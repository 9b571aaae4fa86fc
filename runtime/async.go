package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/webhook"
	"github.com/cortexfn/cortex/runtime/webhookguard"
)

// This file is the function's background predictions (docs/async.md): a
// caller that sends Prefer: respond-async to a prediction route, or PUTs
// /predictions/{id}, gets a prediction resource at once (202) and the
// answer later, from GET /predictions/{id} or a webhook. The prediction
// runs as any other: admitted at submission (so a drain waits for it,
// within limits.shutdown_timeout), through the same queue and
// concurrency slots, under limits.timeout, counted in the in-flight and
// queue gauges, its panics recovered.
//
// The results are kept in memory (predictionStore), for async.keep, at
// most async.max_predictions of them: a process that exits loses them.
// The store is an interface so that a durable one (cortex serve's host,
// on disk) can take its place without the rest changing.

// predictionStore keeps background predictions' resources by id. Its
// methods are called with predictions.mu held.
type predictionStore interface {
	// get returns the prediction id, nil when none is kept (expired
	// ones included).
	get(id string, now time.Time) *prediction
	// add keeps p; it returns false when the store is full of
	// unfinished predictions (after deleting the oldest finished one
	// if it must).
	add(p *prediction, now time.Time) bool
	// finished records that p has finished at now: it expires at
	// now+keep.
	finished(p *prediction, now time.Time)
}

// prediction is one background prediction. res is guarded by
// predictions.mu.
type prediction struct {
	res      adapters.Prediction
	digest   [sha256.Size]byte // of the request, for a repeated PUT
	cancel   context.CancelFunc
	finished chan struct{} // closed when res is done
	expires  time.Time
	hook     *hook // nil without a webhook
}

// predictions is the runtime's part of background predictions.
type predictions struct {
	r   *Runtime
	cfg AsyncConfig
	// off is the error every async route answers when the function
	// cannot run predictions in the background here (Lambda).
	off error
	// guard checks webhook URLs (package webhookguard; nil with hookErr, when
	// async.webhook_allow is invalid); secret signs them (hookErr when
	// its variable is named but unset or malformed).
	guard   *webhookguard.Guard
	secret  string
	hookErr error
	client  *http.Client
	now     func() time.Time

	// running counts the predictions run in the background now: load
	// that no HTTP request shows, which a process started by cortex serve
	// with a shared socket reports (activated.report).
	running atomic.Int64

	mu    sync.Mutex
	store predictionStore
}

func newPredictions(r *Runtime) *predictions {
	cfg := r.cfg.Async.WithDefaults()
	s := &predictions{r: r, cfg: cfg, now: time.Now, store: newMemoryStore(cfg)}
	if os.Getenv(lambda.EnvRuntimeAPI) != "" {
		// A function URL's invocation ends when the handler answers,
		// and Lambda freezes the process until the next one: work
		// left running would stop mid-way. Lambda's own asynchronous
		// invoke is the way there (docs/async.md).
		s.off = &functions.Error{Status: http.StatusNotImplemented, Message: "background predictions are not served on AWS Lambda: " +
			"an invocation ends with its answer, so nothing may run after it; send the request without Prefer: respond-async " +
			"(it is then answered when done), or invoke the function asynchronously through Lambda (InvocationType Event)"}
	}
	g, err := webhookguard.New(cfg.WebhookAllow)
	if err != nil {
		s.hookErr = err
	}
	s.guard = g
	if g != nil {
		s.client = g.Client()
	}
	if name := cfg.WebhookSecretEnv; name != "" && s.hookErr == nil {
		s.secret = os.Getenv(name)
		if s.secret == "" {
			s.hookErr = fmt.Errorf("$%s (async.webhook_secret_env) is not set: the function has no secret to sign webhooks with", name)
		} else if _, err := webhook.Key(s.secret); err != nil {
			s.hookErr = fmt.Errorf("$%s (async.webhook_secret_env): %w", name, err)
		}
	}
	if s.hookErr != nil {
		r.log.Error("webhooks are off", "err", s.hookErr)
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func notFound(id string) error {
	return &functions.Error{Status: http.StatusNotFound, Message: fmt.Sprintf(
		"no prediction %q: it was never made here, or its result expired (kept for async.keep after it finished)", truncate(id, 140))}
}

// Submit implements adapters.AsyncEngine: it checks what can be checked
// now (the function is ready and not draining, the model, the body's
// size, a slot or a queue place, the webhook URL), answering an error
// for the caller as a prediction would, and then admits req and runs it
// in the background.
func (r *Runtime) Submit(ctx context.Context, req *functions.Request, sub adapters.Submission) (adapters.Prediction, bool, error) {
	s := r.async
	if s.off != nil {
		return adapters.Prediction{}, false, s.off
	}
	if sub.ID != "" {
		if err := adapters.CheckPredictionID(sub.ID); err != nil {
			return adapters.Prediction{}, false, err
		}
	}
	if err := r.starting(req.ID); err != nil {
		return adapters.Prediction{}, false, err
	}
	if err := r.route(req); err != nil {
		return adapters.Prediction{}, false, err
	}
	if int64(len(req.Body)) > r.limits.MaxBody {
		r.m.rejected.WithLabelValues("body_too_large").Inc()
		return adapters.Prediction{}, false, adapters.TooLarge(int64(len(req.Body)), r.limits.MaxBody)
	}
	h, err := s.newHook(ctx, sub)
	if err != nil {
		return adapters.Prediction{}, false, err
	}
	digest := requestDigest(req)

	s.mu.Lock()
	now := s.now()
	if sub.ID != "" {
		if p := s.store.get(sub.ID, now); p != nil {
			res := p.res
			s.mu.Unlock()
			if p.digest != digest {
				return adapters.Prediction{}, false, &functions.Error{Status: http.StatusConflict, Message: fmt.Sprintf(
					"prediction %q exists and was made from another request; a repeated PUT must send the same body (and model), or use a new id", sub.ID)}
			}
			return res, false, nil
		}
	}
	if err := r.roomFor(); err != nil {
		s.mu.Unlock()
		return adapters.Prediction{}, false, err
	}
	id := sub.ID
	if id == "" {
		id = NewRequestID()
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &prediction{
		res:      adapters.Prediction{ID: id, Status: adapters.StatusStarting, CreatedAt: now.UTC(), URLs: adapters.URLsOf(id)},
		digest:   digest,
		cancel:   cancel,
		finished: make(chan struct{}),
		hook:     h,
	}
	// Admitted here, not when it runs: a drain that starts now waits
	// for it (Shutdown), rather than refuse a prediction it accepted.
	if !r.enter() {
		s.mu.Unlock()
		cancel()
		r.m.rejected.WithLabelValues("shutting_down").Inc()
		return adapters.Prediction{}, false, &functions.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Message: "function is shutting down; retry on another instance"}
	}
	if !s.store.add(p, now) {
		s.mu.Unlock()
		r.leave()
		cancel()
		return adapters.Prediction{}, false, &functions.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second, Message: fmt.Sprintf(
			"function is at capacity: all %d kept predictions are unfinished (async.max_predictions); retry later", s.cfg.MaxPredictions)}
	}
	res := p.res
	s.mu.Unlock()

	if req.ID == "" {
		req.ID = id
	}
	if h != nil {
		r.hold() // the deliveries are work a drain waits for too
		go s.deliver(p, h)
	}
	go s.run(pctx, p, req)
	return res, true, nil
}

// roomFor refuses a prediction at once when every slot is busy and the
// queue is full, as an ordinary one is, rather than accept it and fail
// it a moment later.
func (r *Runtime) roomFor() error {
	if len(r.slots) < cap(r.slots) || r.waiting.Load() < int64(r.limits.MaxQueue) {
		return nil
	}
	r.m.rejected.WithLabelValues("queue_full").Inc()
	return &functions.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
		Message: fmt.Sprintf("function is at capacity: %d predictions running and %d queued (limits.max_concurrency, limits.max_queue); retry later",
			r.limits.MaxConcurrency, r.limits.MaxQueue)}
}

// hold admits one more piece of work without the draining check: only
// while the caller holds an admission already, so the drain cannot have
// seen none in flight. leave releases it.
func (r *Runtime) hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight++
}

// requestDigest identifies a request for a repeated PUT: its route,
// model and body.
func requestDigest(req *functions.Request) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{req.Path, req.Model, req.Version, req.ContentType} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(req.Body)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// run runs p's request as an ordinary prediction, in the background.
// It is invoke after admission (taken by Submit, released here): invoke
// itself would refuse a prediction accepted just before a drain began.
func (s *predictions) run(caller context.Context, p *prediction, req *functions.Request) {
	r := s.r
	defer r.leave()
	s.running.Add(1)
	defer s.running.Add(-1)
	resp, err := r.runAdmitted(caller, req, func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		s.started(p)
		return r.serve(ctx, req)
	})
	s.finish(p, resp, err)
}

// started marks p processing: the predictor has it.
func (s *predictions) started(p *prediction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.res.Status != adapters.StatusStarting {
		return
	}
	p.res.Status, p.res.StartedAt = adapters.StatusProcessing, s.now().UTC()
	p.hook.send(adapters.EventStart, p.res)
}

// finish records p's answer, unless p was cancelled first.
func (s *predictions) finish(p *prediction, resp *functions.Response, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.res.Done() {
		return
	}
	res := &p.res
	if err != nil {
		res.Status, res.StatusCode = adapters.StatusFailed, functions.StatusOf(err)
		er := adapters.ErrorResponse(err, "")
		res.Output, res.ContentType = er.Body, "application/json"
		res.Error = errorMessage(er.Body, res.StatusCode)
	} else {
		res.StatusCode = resp.StatusCode()
		res.Status = adapters.StatusSucceeded
		if res.StatusCode >= 400 {
			res.Status, res.Error = adapters.StatusFailed, errorMessage(resp.Body, res.StatusCode)
		}
		if int64(len(resp.Body)) > s.cfg.MaxOutput {
			res.Status = adapters.StatusFailed
			res.Error = fmt.Sprintf("the answer (%d bytes) is larger than a kept result may be (async.max_output, %d bytes); raise it, or ask without Prefer: respond-async",
				len(resp.Body), s.cfg.MaxOutput)
		} else {
			res.Output, res.OutputEncoding, res.ContentType = output(resp)
		}
	}
	if res.Status == adapters.StatusSucceeded {
		p.hook.send(adapters.EventOutput, p.res)
	}
	s.complete(p)
}

// complete ends p: it expires after async.keep, its waiters wake and its
// webhook gets the completed event. Called with s.mu held, once.
func (s *predictions) complete(p *prediction) {
	now := s.now()
	p.res.CompletedAt = now.UTC()
	p.cancel()
	s.store.finished(p, now)
	close(p.finished)
	p.hook.send(adapters.EventCompleted, p.res)
	p.hook.close()
}

// errorMessage is the "error" of an error body, else the status's text.
func errorMessage(body []byte, status int) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return fmt.Sprintf("the prediction answered %d %s", status, http.StatusText(status))
}

// output is an answer's body for the resource: JSON as it is, anything
// else in base64.
func output(resp *functions.Response) (json.RawMessage, string, string) {
	ct := resp.ContentType()
	if len(resp.Body) == 0 {
		return nil, "", ct
	}
	if isJSON(ct) && json.Valid(resp.Body) {
		var buf bytes.Buffer
		if json.Compact(&buf, resp.Body) == nil {
			return buf.Bytes(), "", ct
		}
	}
	b, _ := json.Marshal(base64.StdEncoding.EncodeToString(resp.Body))
	return b, "base64", ct
}

func isJSON(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// lookup returns prediction id with s.mu held (the caller unlocks it), or
// what every reader of a prediction answers otherwise: async off, or no
// such prediction (never made, or expired).
func (s *predictions) lookup(id string) (*prediction, error) {
	if s.off != nil {
		return nil, s.off
	}
	s.mu.Lock()
	p := s.store.get(id, s.now())
	if p == nil {
		s.mu.Unlock()
		return nil, notFound(id)
	}
	return p, nil
}

// Prediction implements adapters.AsyncEngine.
func (r *Runtime) Prediction(_ context.Context, id string) (adapters.Prediction, error) {
	p, err := r.async.lookup(id)
	if err != nil {
		return adapters.Prediction{}, err
	}
	defer r.async.mu.Unlock()
	return p.res, nil
}

// Cancel implements adapters.AsyncEngine: the prediction's context ends
// (a predictor that heeds it stops; one that does not keeps its slot
// until it returns, as a prediction whose caller left does), and it is
// canceled at once. A finished prediction stays as it is.
func (r *Runtime) Cancel(_ context.Context, id string) (adapters.Prediction, error) {
	s := r.async
	p, err := s.lookup(id)
	if err != nil {
		return adapters.Prediction{}, err
	}
	defer s.mu.Unlock()
	if !p.res.Done() {
		p.res.Status, p.res.StatusCode, p.res.Error = adapters.StatusCanceled, 499, "canceled by POST "+p.res.URLs.Cancel
		s.complete(p)
	}
	return p.res, nil
}

// Wait implements adapters.AsyncEngine.
func (r *Runtime) Wait(ctx context.Context, id string) (adapters.Prediction, error) {
	s := r.async
	p, err := s.lookup(id)
	if err != nil {
		return adapters.Prediction{}, err
	}
	s.mu.Unlock()
	select {
	case <-p.finished:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.res, nil
}

// memoryStore is the in-memory predictionStore: a map, and the finished
// predictions in the order they finished, which is the order they
// expire in (async.keep is one duration), so expiring and evicting take
// them from the front.
type memoryStore struct {
	keep time.Duration
	max  int
	byID map[string]*prediction
	done []*prediction
}

func newMemoryStore(cfg AsyncConfig) *memoryStore {
	return &memoryStore{keep: cfg.Keep.D(), max: cfg.MaxPredictions, byID: map[string]*prediction{}}
}

func (m *memoryStore) get(id string, now time.Time) *prediction {
	m.expire(now)
	return m.byID[id]
}

func (m *memoryStore) add(p *prediction, now time.Time) bool {
	m.expire(now)
	if len(m.byID) >= m.max {
		if len(m.done) == 0 {
			return false
		}
		m.drop()
	}
	m.byID[p.res.ID] = p
	return true
}

func (m *memoryStore) finished(p *prediction, now time.Time) {
	p.expires = now.Add(m.keep)
	m.done = append(m.done, p)
}

// expire deletes the finished predictions past their time.
func (m *memoryStore) expire(now time.Time) {
	for len(m.done) > 0 && !now.Before(m.done[0].expires) {
		m.drop()
	}
}

// drop deletes the oldest finished prediction.
func (m *memoryStore) drop() {
	p := m.done[0]
	m.done[0] = nil
	m.done = m.done[1:]
	if m.byID[p.res.ID] == p {
		delete(m.byID, p.res.ID)
	}
}

var (
	_ adapters.AsyncEngine = (*Runtime)(nil)
	_ adapters.AsyncEngine = countedEngine{}
	_ predictionStore      = (*memoryStore)(nil)
)
