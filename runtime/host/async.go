package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cortexfn/cortex/adapters"
	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// This file is cortex serve's durable queue of background predictions
// (docs/async.md, "cortex serve"). With WithStateFile the host, not the
// function's processes, owns a background prediction asked for on the
// front (Prefer: respond-async on /{function}/..., and
// /{function}/predictions/{id}): it keeps it in a bbolt file
// (async_store.go), and hands it to a process as an ordinary request,
// through serveFunction, as a synchronous caller's request goes: so
// scale-from-zero, the per-process concurrency, the host's queue and the
// autoscaler's count all apply to it. Results and webhook deliveries are
// in the file too, so a host killed mid-run resumes them when it starts
// again on the same file.
//
// Delivery is at least once: a prediction that a process had when the
// host died is handed over again at the restart (Attempts counts the
// hand-overs; a second host death under the same prediction fails it
// rather than loop). A prediction recorded as finished is never run
// again: its record is committed, with an fsync, before anything else
// is done with its answer.

// AsyncSettings are a function's background predictions under the host's
// durable queue: its async: section in cortex.yaml. Zero fields take the
// defaults below.
type AsyncSettings struct {
	// Keep is how long a finished prediction is kept (default 1h).
	Keep time.Duration
	// MaxOutput is the largest answer kept, in bytes (default 1 MiB): a
	// larger one makes the prediction failed, saying so.
	MaxOutput int64
	// MaxBody is the largest request body accepted, in bytes (default
	// 6 MiB, the runtime's limits.max_body default).
	MaxBody int64
	// WebhookSecret signs webhooks (whsec_ and base64); empty: the
	// function sends no webhooks, and a request for one is a 422.
	WebhookSecret string
	// WebhookAllow opens hosts a webhook may not reach by default
	// (package webhookguard): host, host:port or CIDR block.
	WebhookAllow []string
	// WebhookAttempts is how many times the completed event is tried
	// (default 5); WebhookBackoff the wait before the second attempt,
	// doubled before each later one (default 4s).
	WebhookAttempts int
	WebhookBackoff  time.Duration
	// Concurrency is the most predictions of the function the host hands
	// its processes at once. 0: TargetConcurrency × MaxScale, at most the
	// function's MaxQueue and 256.
	Concurrency int
}

func (a AsyncSettings) withDefaults(f *Function) AsyncSettings {
	// The defaults are the function runtime's (runtime.AsyncConfig,
	// runtime.Limits): a function behaves alike under cortex serve's
	// queue and on its own.
	if a.Keep <= 0 {
		a.Keep = runtime.DefaultAsyncKeep
	}
	if a.MaxOutput <= 0 {
		a.MaxOutput = runtime.DefaultMaxOutput
	}
	if a.MaxBody <= 0 {
		a.MaxBody = runtime.DefaultMaxBody
	}
	if a.WebhookAttempts <= 0 {
		a.WebhookAttempts = runtime.DefaultWebhookAttempts
	}
	if a.WebhookBackoff <= 0 {
		a.WebhookBackoff = runtime.DefaultWebhookBackoff
	}
	if a.Concurrency <= 0 {
		n := f.Scale.TargetConcurrency * f.Scale.MaxScale
		if f.MaxQueue > 0 {
			n = min(n, f.MaxQueue)
		}
		a.Concurrency = max(min(n, 256), 1)
	}
	return a
}

// WithStateFile makes the host own the background predictions asked for
// on its front, in a bbolt file at path (made when missing; 0600: it
// holds requests and results). Without it those requests go to the
// function's processes, which keep them in memory. The file is locked
// while the host runs: a second host on it fails at New.
func WithStateFile(path string) Option {
	return func(o *options) error {
		if path == "" {
			return errors.New("host: WithStateFile: empty path")
		}
		o.statePath = path
		return nil
	}
}

// asyncHeaders are the headers of the caller's request a background
// prediction keeps and sends with each attempt: what the function reads
// to decode the body and to let the caller in. Others (cookies, the
// caller's tracing) are not written to the state file.
var asyncHeaders = []string{"Content-Type", "Content-Encoding", "Accept", "Authorization"}

// maxRequeues bounds how often a prediction refused with 503 and
// Retry-After (a process at capacity, exiting, or the host's queue full)
// goes back to the queue before the refusal is its answer.
const maxRequeues = 30

// defaultSweepEvery is how often expired results are deleted.
const defaultSweepEvery = time.Minute

// maxHostDeaths is how many hand-overs a prediction gets from hosts that
// died under it: at least once, not forever.
const maxHostDeaths = 2

// asyncQueue is the host's durable queue: the store, the predictions
// handed to processes now, and the goroutines that hand them over and
// deliver their webhooks.
type asyncQueue struct {
	h     *Host
	store *asyncStore
	sweep time.Duration

	ctx    context.Context // ends at close: waits end, state stays on disk
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closing bool
	running map[string]context.CancelFunc // by storeKey
	sems    map[string]chan struct{}      // by function
	guards  map[string]*hookClient        // by function
}

func newAsyncQueue(h *Host, path string, sweep time.Duration) (*asyncQueue, error) {
	s, err := openAsyncStore(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &asyncQueue{h: h, store: s, sweep: sweep, ctx: ctx, cancel: cancel,
		running: map[string]context.CancelFunc{}, sems: map[string]chan struct{}{}, guards: map[string]*hookClient{}}, nil
}

// start resumes what the file holds: predictions not finished go back to
// the queue (those a dead host had handed over are counted, see
// maxHostDeaths), webhooks not delivered are sent; and the sweeper
// starts.
func (q *asyncQueue) start() error {
	type pending struct {
		fn, id string
		hook   bool
	}
	var todo []pending
	if err := q.store.each(func(rec *record) error {
		switch {
		case !rec.Res.Done():
			todo = append(todo, pending{rec.Function, rec.Res.ID, false})
		case rec.hookPending():
			todo = append(todo, pending{rec.Function, rec.Res.ID, true})
		}
		return nil
	}); err != nil {
		return err
	}
	now := time.Now()
	for _, p := range todo {
		f := q.h.fns[p.fn]
		if f == nil {
			continue // a function not served now: its predictions wait for it
		}
		if p.hook {
			q.goDeliver(f, p.id)
			continue
		}
		rec, err := q.store.update(p.fn, p.id, func(rec *record) (*record, error) {
			if rec == nil || rec.Res.Done() || rec.Res.Status != adapters.StatusProcessing {
				return nil, nil
			}
			if rec.Attempts >= maxHostDeaths {
				finishRecord(rec, now, f.async(), http.StatusServiceUnavailable, nil,
					[]byte(functions.ErrorBody(fmt.Sprintf("cortex serve stopped %d times while the prediction ran; not handed over again", rec.Attempts))), false)
				return rec, nil
			}
			rec.Res.Status, rec.Res.StartedAt = adapters.StatusStarting, time.Time{}
			return rec, nil
		})
		if err != nil {
			return err
		}
		if rec != nil && rec.Res.Done() {
			q.goDeliver(f, p.id)
			continue
		}
		q.goRun(f, p.id)
	}
	q.wg.Go(q.sweeper)
	return nil
}

// stop refuses new submissions: the host is shutting down.
func (q *asyncQueue) stop() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
}

// close ends the waits (a webhook's backoff, a prediction's turn), waits
// for the goroutines and closes the file. What was not done is on disk.
func (q *asyncQueue) close() error {
	q.stop()
	q.cancel()
	q.wg.Wait()
	return q.store.close()
}

func (q *asyncQueue) isClosing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing
}

// async returns the function's settings of the revision that serves.
func (f *function) async() AsyncSettings {
	f.mu.Lock()
	spec := f.spec
	f.mu.Unlock()
	return spec.Async.withDefaults(spec)
}

// serve answers r when it is the queue's: a POST that prefers an
// asynchronous answer, and /predictions/{id}[/cancel]. prefix is what the
// caller's paths to the function start with ("/{function}" on the
// front's path route, "" under Host: {function}.localhost). It reports
// whether it answered.
func (q *asyncQueue) serve(w http.ResponseWriter, r *http.Request, f *function, path, prefix string) bool {
	id, action, isRoute := adapters.PredictionRoute(path)
	async := adapters.ParsePrefer(r.Header).RespondAsync()
	if !isRoute && !(async && r.Method == http.MethodPost) {
		return false
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		f.m.requests.inc(sw.code(r))
		q.h.changes.notify()
	}()
	w = sw
	switch {
	case !isRoute:
		q.submit(w, r, f, path, "", prefix)
	case action == "cancel":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, &functions.Error{Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " not allowed: POST cancels a prediction"})
			return true
		}
		q.cancelPrediction(w, f, id, prefix)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		if err := adapters.CheckPredictionID(id); err != nil {
			writeError(w, err)
			return true
		}
		rec, err := q.store.get(f.name, id)
		switch {
		case err != nil:
			writeError(w, err)
		case rec == nil:
			writeError(w, predictionNotFound(id))
		default:
			writePrediction(w, rec.Res, prefix)
		}
	case r.Method == http.MethodPut:
		q.submit(w, r, f, "/predict", id, prefix)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		writeError(w, &functions.Error{Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " not allowed on a prediction"})
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func predictionNotFound(id string) error {
	return &functions.Error{Status: http.StatusNotFound, Message: fmt.Sprintf(
		"no prediction %q: it was never made through cortex serve's front, or its result expired (kept for async.keep after it finished)", truncate(id, 140))}
}

// submit admits a background prediction of r's body to path (the
// caller's id when PUT), and answers its resource.
func (q *asyncQueue) submit(w http.ResponseWriter, r *http.Request, f *function, path, id, prefix string) {
	f.mu.Lock()
	closed, spec := f.closed, f.spec
	var cannot error
	if spec.Err != nil {
		cannot = f.cannotRunLocked()
	}
	f.mu.Unlock()
	switch {
	case closed || q.isClosing():
		writeError(w, shuttingDown())
		return
	case cannot != nil:
		writeError(w, cannot)
		return
	}
	if id != "" {
		if err := adapters.CheckPredictionID(id); err != nil {
			writeError(w, err)
			return
		}
	}
	set := spec.Async.withDefaults(spec)
	body, err := io.ReadAll(io.LimitReader(r.Body, set.MaxBody+1))
	if err != nil {
		writeError(w, &functions.Error{Status: http.StatusBadRequest, Message: "reading the request body: " + err.Error()})
		return
	}
	if int64(len(body)) > set.MaxBody {
		w.Header().Set("Connection", "close")
		writeError(w, &functions.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf(
			"the request body is larger than %d bytes (limits.max_body)", set.MaxBody)})
		return
	}
	query := r.URL.Query()
	hookURL := r.Header.Get(httpadapter.HeaderWebhook)
	if hookURL == "" {
		hookURL = query.Get("webhook")
	}
	query.Del("webhook")
	var events []string
	for _, v := range r.Header.Values(httpadapter.HeaderWebhookEvents) {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.ToLower(strings.TrimSpace(e)); e != "" && !slices.Contains(events, e) {
				events = append(events, e)
			}
		}
	}
	if hookURL != "" {
		if events, err = q.checkHook(r.Context(), f, set, hookURL, events); err != nil {
			writeError(w, err)
			return
		}
	}
	req := storedRequest{Method: http.MethodPost, Path: path, RawQuery: query.Encode(), Header: http.Header{}, Body: body}
	for _, k := range asyncHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = slices.Clone(v)
		}
	}
	digest := requestDigest(req)
	created := false
	if id == "" {
		id = newRequestID()
	}
	now := time.Now()
	rec, err := q.store.update(f.name, id, func(rec *record) (*record, error) {
		if rec != nil {
			if rec.Digest != digest {
				return nil, &functions.Error{Status: http.StatusConflict, Message: fmt.Sprintf(
					"prediction %q exists and was made from another request; a repeated PUT must send the same body (and model), or use a new id", id)}
			}
			return nil, nil
		}
		created = true
		return &record{Function: f.name, Request: req, Digest: digest, Webhook: hookURL, Events: events,
			Res: adapters.Prediction{ID: id, Status: adapters.StatusStarting, CreatedAt: now.UTC(), URLs: adapters.URLsOf(id)}}, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	if created {
		q.goRun(f, id)
	}
	prefs := adapters.ParsePrefer(r.Header)
	async := prefs.RespondAsync()
	if wait := prefs.Wait(); !rec.Res.Done() && (wait > 0 || !async) {
		ctx := r.Context()
		if async {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, wait)
			defer cancel()
		}
		if got := q.wait(ctx, f.name, id); got != nil {
			rec = got
		}
	}
	if async {
		w.Header().Set("Preference-Applied", "respond-async")
	}
	writePrediction(w, rec.Res, prefix)
}

// wait polls the prediction until it has finished or ctx ends. The
// store's reads are memory-mapped: a poll costs microseconds.
func (q *asyncQueue) wait(ctx context.Context, fn, id string) *record {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		rec, err := q.store.get(fn, id)
		if err != nil || rec == nil || rec.Res.Done() {
			return rec
		}
		select {
		case <-ctx.Done():
			return rec
		case <-q.ctx.Done():
			return rec
		case <-t.C:
		}
	}
}

// requestDigest identifies a request for a repeated PUT.
func requestDigest(req storedRequest) string {
	h := sha256.New()
	for _, s := range []string{req.Path, req.RawQuery, req.Header.Get("Content-Type")} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(req.Body)
	return hex.EncodeToString(h.Sum(nil))
}

// writePrediction answers a prediction's resource: 200 once it has
// finished, else 202 with Location; its paths start with prefix.
func writePrediction(w http.ResponseWriter, p adapters.Prediction, prefix string) {
	p.URLs = adapters.PredictionURLs{Get: prefix + p.URLs.Get, Cancel: prefix + p.URLs.Cancel}
	status := http.StatusOK
	if !p.Done() {
		status = http.StatusAccepted
		w.Header().Set("Location", p.URLs.Get)
	}
	b, err := json.Marshal(p)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// cancelPrediction cancels the prediction unless it has finished: a
// queued one never runs, a running one's request ends (its process's
// context with it).
func (q *asyncQueue) cancelPrediction(w http.ResponseWriter, f *function, id, prefix string) {
	if err := adapters.CheckPredictionID(id); err != nil {
		writeError(w, err)
		return
	}
	now := time.Now()
	set := f.async()
	rec, err := q.store.update(f.name, id, func(rec *record) (*record, error) {
		if rec == nil {
			return nil, predictionNotFound(id)
		}
		if rec.Res.Done() {
			return nil, nil
		}
		rec.Res.Status, rec.Res.StatusCode, rec.Res.Error = adapters.StatusCanceled, 499, "canceled by POST "+prefix+rec.Res.URLs.Cancel
		rec.Res.CompletedAt, rec.Expires = now.UTC(), now.Add(set.Keep)
		return rec, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	q.mu.Lock()
	if cancel := q.running[string(storeKey(f.name, id))]; cancel != nil {
		cancel()
	}
	q.mu.Unlock()
	if rec.hookPending() {
		q.goDeliver(f, id)
	}
	writePrediction(w, rec.Res, prefix)
}

func (q *asyncQueue) sem(f *function) chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.sems[f.name]
	if s == nil {
		s = make(chan struct{}, f.async().Concurrency)
		q.sems[f.name] = s
	}
	return s
}

func (q *asyncQueue) goRun(f *function, id string) {
	q.wg.Go(func() { q.run(f, id) })
}

// run hands the prediction to a process when its turn comes, and records
// the answer. A 503 with Retry-After (no room now: the host's queue is
// full, a process exits to be replaced) puts it back in the queue, not
// counted as an attempt; at shutdown it stays queued, on disk.
func (q *asyncQueue) run(f *function, id string) {
	sem := q.sem(f)
	select {
	case sem <- struct{}{}:
	case <-q.ctx.Done():
		return
	}
	defer func() { <-sem }()
	key := string(storeKey(f.name, id))
	for requeues := 0; ; requeues++ {
		if q.isClosing() {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		q.mu.Lock()
		q.running[key] = cancel
		q.mu.Unlock()
		rec, err := q.store.update(f.name, id, func(rec *record) (*record, error) {
			if rec == nil || rec.Res.Done() {
				return nil, nil
			}
			rec.Attempts++
			rec.Res.Status, rec.Res.StartedAt = adapters.StatusProcessing, time.Now().UTC()
			return rec, nil
		})
		if err != nil || rec == nil || rec.Res.Done() {
			if err != nil {
				q.h.opts.logger.Error("background prediction: the state file", "function", f.name, "prediction", id, "err", err)
			}
			q.forget(key, cancel)
			return
		}
		if slices.Contains(rec.Events, adapters.EventStart) {
			q.goEvent(f, rec, adapters.EventStart)
		}
		set := f.async()
		ans := q.send(ctx, f, rec, set.MaxOutput)
		q.forget(key, cancel)
		if ans.status == http.StatusServiceUnavailable && ans.header.Get("Retry-After") != "" && requeues < maxRequeues {
			if _, err := q.store.update(f.name, id, func(rec *record) (*record, error) {
				if rec == nil || rec.Res.Done() {
					return nil, nil
				}
				rec.Attempts--
				rec.Res.Status, rec.Res.StartedAt = adapters.StatusStarting, time.Time{}
				return rec, nil
			}); err != nil {
				q.h.opts.logger.Error("background prediction: the state file", "function", f.name, "prediction", id, "err", err)
				return
			}
			if q.isClosing() {
				return // queued, on disk, for the next start
			}
			secs, _ := strconv.Atoi(ans.header.Get("Retry-After"))
			select {
			case <-time.After(time.Duration(min(max(secs, 1), 10)) * time.Second):
				continue
			case <-q.ctx.Done():
				return
			}
		}
		if ctx.Err() != nil && ans.status == 0 {
			return // canceled: the record says so already
		}
		now := time.Now()
		rec, err = q.store.update(f.name, id, func(rec *record) (*record, error) {
			if rec == nil || rec.Res.Done() {
				return nil, nil // canceled meanwhile
			}
			finishRecord(rec, now, set, ans.status, ans.header, ans.body, ans.over)
			return rec, nil
		})
		if err != nil {
			q.h.opts.logger.Error("background prediction: recording its answer", "function", f.name, "prediction", id, "err", err)
			return
		}
		if rec == nil || rec.Webhook == "" {
			return
		}
		if rec.Res.Status == adapters.StatusSucceeded && slices.Contains(rec.Events, adapters.EventOutput) {
			q.goEvent(f, rec, adapters.EventOutput)
		}
		if rec.hookPending() {
			q.goDeliver(f, id)
		}
		return
	}
}

func (q *asyncQueue) forget(key string, cancel context.CancelFunc) {
	cancel()
	q.mu.Lock()
	delete(q.running, key)
	q.mu.Unlock()
}

// answer is what a process (or the host) answered a prediction.
type answer struct {
	status int
	header http.Header
	body   []byte
	over   bool // the body was longer than the limit
}

// send makes the prediction's request to f through serveFunction, as a
// caller's request on the front goes.
func (q *asyncQueue) send(ctx context.Context, f *function, rec *record, limit int64) answer {
	sr := rec.Request
	u := &url.URL{Scheme: "http", Host: "cortex-serve", Path: sr.Path, RawQuery: sr.RawQuery}
	req, err := http.NewRequestWithContext(ctx, sr.Method, u.String(), bytes.NewReader(sr.Body))
	if err != nil {
		return answer{status: http.StatusInternalServerError, body: functions.ErrorBody(err.Error())}
	}
	req.Header = sr.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("X-Request-Id", rec.Res.ID)
	req.RemoteAddr = "127.0.0.1:0"
	bw := &bufferWriter{header: http.Header{}, limit: limit}
	q.h.serveFunction(bw, req, f, sr.Path, "")
	return answer{status: cmpStatus(bw.status), header: bw.header, body: bw.buf.Bytes(), over: bw.over}
}

func cmpStatus(s int) int {
	if s == 0 {
		return http.StatusOK
	}
	return s
}

// bufferWriter is the ResponseWriter of a background prediction's
// request: it keeps the answer, up to limit bytes.
type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
	limit  int64
	over   bool
}

func (b *bufferWriter) Header() http.Header { return b.header }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 && code >= 200 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if room := b.limit - int64(b.buf.Len()); int64(len(p)) > room {
		b.over = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}
func (b *bufferWriter) Flush() {}

// finishRecord records the answer in rec: succeeded below 400, failed
// else; the output as the runtime's resource has it.
func finishRecord(rec *record, now time.Time, set AsyncSettings, status int, header http.Header, body []byte, over bool) {
	res := &rec.Res
	res.StatusCode = status
	res.Status = adapters.StatusSucceeded
	ct := header.Get("Content-Type")
	switch {
	case over:
		res.Status = adapters.StatusFailed
		res.Error = fmt.Sprintf("the answer is larger than a kept result may be (async.max_output, %d bytes); raise it, or ask without Prefer: respond-async", set.MaxOutput)
	case status >= 400:
		res.Status, res.Error = adapters.StatusFailed, errorMessage(body, status)
		res.Output, res.OutputEncoding, res.ContentType = output(ct, body)
	default:
		res.Output, res.OutputEncoding, res.ContentType = output(ct, body)
	}
	res.CompletedAt = now.UTC()
	rec.Expires = now.Add(set.Keep)
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
// else in base64 (as the runtime's own resource has it).
func output(ct string, body []byte) (json.RawMessage, string, string) {
	if len(body) == 0 {
		return nil, "", ct
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Valid(body) {
		var buf bytes.Buffer
		if json.Compact(&buf, body) == nil {
			return buf.Bytes(), "", ct
		}
	}
	b, _ := json.Marshal(base64.StdEncoding.EncodeToString(body))
	return b, "base64", ct
}

// sweeper deletes expired results every q.sweep.
func (q *asyncQueue) sweeper() {
	t := time.NewTicker(q.sweep)
	defer t.Stop()
	for {
		select {
		case <-q.ctx.Done():
			return
		case <-t.C:
			if _, err := q.store.sweep(time.Now()); err != nil {
				q.h.opts.logger.Error("background predictions: deleting expired results", "err", err)
			}
		}
	}
}

var _ http.ResponseWriter = (*bufferWriter)(nil)
