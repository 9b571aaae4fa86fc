package host

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/host/supervisor"
)

// Function is one function the host serves.
type Function struct {
	// Name routes requests (/{Name}/... and Host: {Name}.localhost). It must
	// be a DNS label: lower-case letters, digits and '-', not starting or
	// ending with '-', at most 63 characters. "metrics" is reserved.
	Name string
	// Command is the function binary (already built) and its arguments.
	Command []string
	// Env is the environment of every process, beside the few variables
	// of the host's own environment that processes inherit (PATH, HOME,
	// TMPDIR, the locale, the runtime's CORTEX_LOG_LEVEL, CORTEX_CACHE and
	// CORTEX_ONNXRUNTIME_LIB, and the like: see inherited); the rest of the
	// host's environment, credentials first, never reaches a function.
	// The host sets PORT (a free loopback port) and CORTEX_HOST
	// (127.0.0.1) itself, after Env, so they cannot be overridden.
	Env []string
	// Dir is the working directory of the processes; empty means the
	// host's.
	Dir string
	// Scale configures the autoscaler.
	Scale Autoscaling
	// MaxQueue bounds the requests held for this function while no process
	// has a free slot (during a cold start, or at MaxScale). Beyond it a
	// request gets 503 with Retry-After. 0 means DefaultMaxQueue; a
	// negative value means no queue at all.
	MaxQueue int
	// StartTimeout bounds how long a new process may take to answer 200 on
	// /readyz. 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// Timeout is the function's limits.timeout: how long one prediction
	// may take. From the moment a process has a request, the host gives
	// it Timeout plus the request grace (WithRequestGrace) for its body
	// to arrive and its answer to come (see Host.ServeHTTP). 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Err, when not nil, is why the function cannot run: its build failed.
	// The host starts no process for it and answers every request on its
	// route with 503 and Err's text, and Status reports it as StateFailed,
	// until Replace gives it a build. Command is not needed then. A
	// function that did not build is served this way, rather than left
	// out, so that a caller of it learns why instead of getting a 404, and
	// so that the other functions serve meanwhile.
	Err error
	// Listener, when not nil, is the function's own socket (a TCP or Unix
	// listener; the host takes it over and closes it at Shutdown): its
	// callers reach the function there with the paths it serves itself
	// (/v2/models/..., not /{Name}/v2/...), and its warm processes accept
	// on it themselves, with no proxy between them and the caller (see
	// package activation). The front's route serves the function too.
	// Replace keeps the socket New was given; Listener in a replacement
	// is ignored.
	Listener net.Listener
	// Async configures the function's background predictions in the
	// host's durable queue (WithStateFile); without that option it is
	// not used.
	Async AsyncSettings
}

// Autoscaling is the function's concurrency-based autoscaling, with
// Knative's meaning for each field. Zero values take the defaults below.
type Autoscaling struct {
	// MinScale is the fewest processes kept running; 0 scales to zero.
	MinScale int
	// MaxScale is the most processes; 0 means max(DefaultMaxScale, MinScale).
	MaxScale int
	// TargetConcurrency is the requests in flight per process the
	// autoscaler aims for, and the most the host sends one process at
	// once. 0 means DefaultTargetConcurrency.
	TargetConcurrency int
	// ScaleDownDelay is how long a process must have been idle before it
	// is drained. 0 means no delay beyond the stable window.
	ScaleDownDelay time.Duration
	// StableWindow is the period over which demand is averaged to decide a
	// scale-down. 0 means DefaultStableWindow.
	StableWindow time.Duration
}

// Defaults for zero fields of Function and Autoscaling, and for options.
const (
	DefaultMaxScale          = 10
	DefaultTargetConcurrency = 64 // the runtime's default limits.max_concurrency
	DefaultStableWindow      = 60 * time.Second
	DefaultMaxQueue          = 128
	DefaultStartTimeout      = 60 * time.Second
	DefaultTimeout           = 30 * time.Second // the runtime's default limits.timeout
	// DefaultRequestGrace is the runtime's own margin over limits.timeout
	// for a request's body and answer (30s) and 5s more, so that a
	// process's own answer at its bound (its 504, its 400 for a body that
	// did not arrive) reaches the caller before the host gives up.
	DefaultRequestGrace      = 35 * time.Second
	DefaultDrainTimeout      = 30 * time.Second // the runtime's default limits.shutdown_timeout
	DefaultProbeInterval     = time.Second
	DefaultRestartBackoff    = time.Second
	DefaultMaxRestartBackoff = 30 * time.Second
)

// probeFailures is how many liveness probes in a row a ready process may
// miss before it is killed as hung.
const probeFailures = 3

// Option configures a Host.
type Option func(*options) error

type options struct {
	logger        *slog.Logger
	logOut        io.Writer
	onEvent       func(Event)
	backoff       time.Duration
	maxBackoff    time.Duration
	drainTimeout  time.Duration
	probeInterval time.Duration
	grace         time.Duration

	allowed        *AllowedHosts // the functions' own sockets' Host check
	reportInterval time.Duration // 0: the process's default

	token     string        // the front's bearer token; "" for none (see WithToken)
	heartbeat time.Duration // between comments on an idle /-/events stream

	statePath  string        // the durable queue's file (WithStateFile); "" for none
	sweepEvery time.Duration // how often expired results are deleted
}

// WithLogger sets the logger for the host's own messages (default: text on
// stderr).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("host: WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithLogWriter sets where the processes' stdout and stderr go, one line at
// a time, each prefixed with "[name] " (default: os.Stderr).
func WithLogWriter(w io.Writer) Option {
	return func(o *options) error {
		if w == nil {
			return errors.New("host: WithLogWriter: nil writer")
		}
		o.logOut = w
		return nil
	}
}

// WithEvents calls fn for every process event (start, ready, failed start,
// crash, drain, exit). fn runs on the host's goroutines, never under a
// lock; it must not block for long.
func WithEvents(fn func(Event)) Option {
	return func(o *options) error {
		o.onEvent = fn
		return nil
	}
}

// WithRestartBackoff sets the wait after a failed start before the next
// attempt: initial after the first failure, doubling per consecutive
// failure up to max (defaults 1s and 30s). A start that reaches ready
// resets it.
func WithRestartBackoff(initial, max time.Duration) Option {
	return func(o *options) error {
		if initial <= 0 || max < initial {
			return fmt.Errorf("host: WithRestartBackoff(%s, %s): want 0 < initial <= max", initial, max)
		}
		o.backoff, o.maxBackoff = initial, max
		return nil
	}
}

// WithDrainTimeout bounds how long a process told to stop (SIGTERM) may
// take to finish its requests and exit before it is killed (default 30s).
func WithDrainTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("host: WithDrainTimeout(%s): must be positive", d)
		}
		o.drainTimeout = d
		return nil
	}
}

// WithProbeInterval sets how often a ready process's /healthz is checked
// (default 1s). A process that misses 3 in a row is killed and its
// requests get 502.
func WithProbeInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("host: WithProbeInterval(%s): must be positive", d)
		}
		o.probeInterval = d
		return nil
	}
}

// WithAllowedHosts sets the Host check of the functions' own sockets
// (Function.Listener), which their processes apply too: the front's own
// list, so that a caller reaches a function on its socket under the same
// names as through the front. Default: what the zero AllowedHosts allows.
func WithAllowedHosts(a *AllowedHosts) Option {
	return func(o *options) error {
		if a == nil {
			return errors.New("host: WithAllowedHosts: nil")
		}
		o.allowed = a
		return nil
	}
}

// WithReportInterval sets how often, at most, a process that accepts on
// its function's socket reports its load (default
// activation.DefaultReportInterval).
func WithReportInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("host: WithReportInterval(%s): want a positive duration", d)
		}
		o.reportInterval = d
		return nil
	}
}

// WithRequestGrace sets the margin a request gets beyond its function's
// Timeout once a process has it (default DefaultRequestGrace): its body
// must have arrived, and the process must have answered, within Timeout
// plus this.
func WithRequestGrace(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("host: WithRequestGrace(%s): must be positive", d)
		}
		o.grace = d
		return nil
	}
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		backoff:       DefaultRestartBackoff,
		maxBackoff:    DefaultMaxRestartBackoff,
		drainTimeout:  DefaultDrainTimeout,
		probeInterval: DefaultProbeInterval,
		grace:         DefaultRequestGrace,
		heartbeat:     eventsHeartbeat,
		sweepEvery:    defaultSweepEvery,
	}
	var errs []error
	for _, opt := range opts {
		if err := opt(o); err != nil {
			errs = append(errs, err)
		}
	}
	if o.logOut == nil {
		o.logOut = os.Stderr
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return o, errors.Join(errs...)
}

// Host routes requests to functions and scales each function's processes.
// It is an http.Handler; serve it with an http.Server and call Shutdown
// when done (after, or while, the server shuts down).
type Host struct {
	opts      *options
	fns       map[string]*function
	order     []*function
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	probe     *http.Client
	m         *hostMetrics
	metrics   http.Handler
	out       *supervisor.Output // every process's lines, whole

	// serve is the front's handler: route, behind the bearer-token check
	// when WithToken set one.
	serve   http.Handler
	changes changes       // what the /-/events streams wait on
	streams chan struct{} // closed by CloseStreams: the streams end

	// async is the durable queue of background predictions (async.go);
	// nil without WithStateFile.
	async *asyncQueue

	shutdownOnce sync.Once
	streamsOnce  sync.Once
	asyncOnce    sync.Once
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ErrReservedName is returned by New for a function named "metrics": that
// path is the host's own metrics route.
var ErrReservedName = errors.New(`host: "metrics" is reserved for the host's metrics route`)

// New returns a Host for fns. No process starts until a request needs one
// (or MinScale asks for some, which starts them in the background). It
// reports every invalid field, with the function's index and name.
func New(fns []Function, opts ...Option) (*Host, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := supervisor.Supported(); err != nil {
		return nil, err
	}
	if len(fns) == 0 {
		return nil, errors.New("host: no functions")
	}
	var errs []error
	seen := map[string]bool{}
	specs := make([]*Function, len(fns))
	for i, f := range fns {
		f = withDefaults(f)
		specs[i] = &f
		errs = append(errs, validate(fmt.Sprintf("functions[%d]", i), f)...)
		if seen[f.Name] {
			errs = append(errs, fmt.Errorf("host: functions[%d].name: %q is used twice", i, f.Name))
		}
		seen[f.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	// One transport for every process: keep-alive connections sized so the
	// busiest function at MaxScale × TargetConcurrency reuses them.
	perHost, total := 0, 0
	for _, f := range specs {
		perHost = max(perHost, f.Scale.TargetConcurrency)
		total += f.Scale.TargetConcurrency * f.Scale.MaxScale
	}
	perHost = min(max(perHost, 8), 1024)
	h := &Host{
		opts: o,
		fns:  map[string]*function{},
		transport: &http.Transport{
			Proxy:                 nil, // loopback only: never through an HTTP proxy from the environment
			DialContext:           dialProcess(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}),
			MaxIdleConns:          min(max(total, perHost), 4096),
			MaxIdleConnsPerHost:   perHost,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
			ExpectContinueTimeout: time.Second,
		},
		m:       newHostMetrics(),
		out:     supervisor.NewOutput(o.logOut),
		streams: make(chan struct{}),
	}
	h.serve = http.HandlerFunc(h.route)
	if o.token != "" {
		h.serve = httpadapter.RequireToken(h.serve, o.token, tokenRealm, h.open)
	}
	h.metrics = h.m.handler()
	h.probe = &http.Client{Transport: h.transport, Timeout: 2 * time.Second}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    h.transport,
		BufferPool:   copyBuffers{},
		ErrorHandler: h.proxyError,
		ErrorLog:     slog.NewLogLogger(o.logger.Handler(), slog.LevelWarn),
		// FlushInterval stays 0: ReverseProxy already flushes streamed
		// responses (no Content-Length, or text/event-stream) at once.
	}
	allowed := cmp.Or(o.allowed, &AllowedHosts{})
	for _, spec := range specs {
		f := newFunction(h, spec)
		h.fns[spec.Name] = f
		h.order = append(h.order, f)
		if spec.Listener != nil {
			d, err := newDirect(f, spec.Listener, allowed)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			f.direct = d
			spec.Listener = nil // the function's, not the revision's
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, f := range h.order {
			if f.direct != nil {
				f.direct.closeLocked()
			}
		}
		return nil, err
	}
	for _, f := range h.order {
		f.mu.Lock()
		f.gaugesLocked() // the host accepts on the functions' sockets until a process does
		f.mu.Unlock()
	}
	if o.statePath != "" {
		q, err := newAsyncQueue(h, o.statePath, o.sweepEvery)
		if err == nil {
			h.async = q
			err = q.start()
		}
		if err != nil {
			if h.async != nil {
				_ = h.async.close()
			}
			for _, f := range h.order {
				if f.direct != nil {
					f.direct.closeLocked()
				}
			}
			return nil, err
		}
	}
	for _, f := range h.order {
		go f.autoscaler()
	}
	return h, nil
}

// withDefaults fills f's zero fields. It also copies Command and Env, so
// that a caller who reuses its slices cannot change a running revision.
func withDefaults(f Function) Function {
	f.Command, f.Env = slices.Clone(f.Command), slices.Clone(f.Env)
	a := &f.Scale
	if a.MaxScale == 0 {
		a.MaxScale = max(DefaultMaxScale, a.MinScale)
	}
	if a.TargetConcurrency == 0 {
		a.TargetConcurrency = DefaultTargetConcurrency
	}
	if a.StableWindow == 0 {
		a.StableWindow = DefaultStableWindow
	}
	if f.MaxQueue == 0 {
		f.MaxQueue = DefaultMaxQueue
	} else if f.MaxQueue < 0 {
		f.MaxQueue = 0
	}
	if f.StartTimeout == 0 {
		f.StartTimeout = DefaultStartTimeout
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultTimeout
	}
	return f
}

// validate checks f, found at where (such as "functions[2]"), and reports
// every problem.
func validate(where string, f Function) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("host: %s (%s).%s: %s", where, f.Name, field, fmt.Sprintf(format, args...)))
	}
	switch {
	case f.Name == "metrics":
		errs = append(errs, fmt.Errorf("%s.name: %w", where, ErrReservedName))
	case !nameRE.MatchString(f.Name):
		bad("name", "%q is not a DNS label (lower-case letters, digits and '-', at most 63)", f.Name)
	}
	if f.Err == nil && (len(f.Command) == 0 || f.Command[0] == "") {
		bad("command", "empty")
	}
	a := f.Scale
	if a.MinScale < 0 {
		bad("scale.min_scale", "must be 0 or more, not %d", a.MinScale)
	}
	if a.MaxScale < 1 {
		bad("scale.max_scale", "must be 1 or more, not %d", a.MaxScale)
	} else if a.MinScale > a.MaxScale {
		bad("scale.min_scale", "%d is more than max_scale (%d)", a.MinScale, a.MaxScale)
	}
	if a.TargetConcurrency < 1 {
		bad("scale.target_concurrency", "must be 1 or more, not %d", a.TargetConcurrency)
	}
	if a.ScaleDownDelay < 0 {
		bad("scale.scale_down_delay", "must not be negative (%s)", a.ScaleDownDelay)
	}
	if a.StableWindow < 0 {
		bad("scale.stable_window", "must not be negative (%s)", a.StableWindow)
	}
	if f.StartTimeout < 0 {
		bad("start_timeout", "must not be negative (%s)", f.StartTimeout)
	}
	if f.Timeout < 0 {
		bad("timeout", "must not be negative (%s)", f.Timeout)
	}
	return errs
}

// ServeHTTP routes a request to its function, starting a process when none
// is ready, and answers the host's own routes.
//
// When a function is at MaxScale with every slot busy and its queue is
// full, the answer is 503 with Retry-After, not 429: 429 tells one client
// that it sent too many requests, while here the function as a whole is out
// of capacity whoever is asking. 503 + Retry-After is HTTP's word for a
// temporary overload, it is what Knative's activator and Cortex answer in
// the same case and what the function's own runtime answers when its queue
// is full, and load balancers and clients retry it.
//
// A held request waits as long as its caller does; StartTimeout bounds a
// cold start, and the requests ahead of it in the queue are bounded like
// it. Once a process has the request, its function's Timeout plus the
// request grace bounds the rest: the caller's body must have arrived by
// then (else 408, and the connection is closed), and the process must
// have answered (else 504); writing the answer may take answerMargin
// more. These replace the front server's own read and write timeouts,
// which suit the host's short answers but not a function's: the server's
// read timeout runs from the request's first byte, so a body read after a
// cold start would already be past it, and its write timeout from the end
// of the headers, so a prediction longer than it would lose its answer.
// (Once the body has been read net/http lifts the read deadline itself,
// to watch for the caller going away.)
//
// Every answer on a function's route carries X-Request-Id: the caller's,
// or one the host makes up and passes to the process, so that the
// process's log and the host's speak of the request by one name.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve.ServeHTTP(w, r)
}

// serveFunction forwards r to a process of f as path (rawPath, when not
// empty, the escaped form), holding it while f has none ready: the front's
// /{function}/ route, and f's own socket while the host accepts there.
func (h *Host) serveFunction(w http.ResponseWriter, r *http.Request, f *function, path, rawPath string) {
	if h.servePageShell(w, r, path) {
		return
	}
	// The caller's body is closed before the handler returns, after the
	// process is released (this defer runs last). The proxy relays in full
	// duplex (below), so net/http does not consume the body when the answer
	// starts: left to net/http, the rest of a body the process answered
	// early (a 413) is read after the handler returns, and reaching its end
	// then starts a background read of the connection that nothing stops;
	// the connection's next request panics net/http ("invalid concurrent
	// Body.Read call", golang/go#68560) and is lost. Read here, its end
	// starts that read while net/http can still stop it. A server request's
	// Body is never nil.
	defer r.Body.Close()
	sw := &statusWriter{ResponseWriter: w}
	w = sw
	defer func() {
		f.m.requests.inc(sw.code(r))
		h.changes.notify()
	}()
	rc := http.NewResponseController(w)
	// An answer after a long wait in the queue (a cold start that failed)
	// is still written. An error is a writer without deadlines.
	_ = rc.SetWriteDeadline(time.Time{})
	id := r.Header.Get("X-Request-Id")
	if id == "" {
		id = newRequestID()
	}
	arrived := time.Now()
	p, err := f.acquire(r.Context())
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller went away: nobody reads an answer
		}
		h.refuse(w, f, id, err)
		return
	}
	defer f.release(p)
	f.m.queueTime.Observe(time.Since(arrived).Seconds())

	px := &proxied{p: p, id: id, limit: p.spec.Timeout + h.opts.grace}
	deadline := time.Now().Add(px.limit)
	ctx, cancel := context.WithDeadlineCause(r.Context(), deadline, errLimit)
	defer cancel()
	_ = rc.SetWriteDeadline(deadline.Add(answerMargin))
	out := r.WithContext(context.WithValue(ctx, procKey{}, px))
	if r.Body != nil && r.Body != http.NoBody {
		_ = rc.SetReadDeadline(deadline)
		px.body = &callerBody{ReadCloser: r.Body}
		out.Body = px.body
	}
	u := *r.URL
	u.Path, u.RawPath = path, rawPath
	out.URL = &u
	// The process's answer may start while the proxy still reads the
	// caller's body (a stream flushes its first event at once): without
	// full duplex, net/http consumes and closes the request body when the
	// answer starts, the proxy's read of it fails, and it cuts the answer
	// short (one stream in a dozen, measured). Only here: the host's own
	// refusals above are written before the body is read, as before.
	_ = rc.EnableFullDuplex()
	h.proxy.ServeHTTP(w, out)
}

// answerMargin is how long the host has to write its own answer (a 408 or
// a 504) once a request's bound has passed.
const answerMargin = 5 * time.Second

// errLimit is the cause of a request's context ending at its bound.
var errLimit = errors.New("host: the request's bound passed")

// refuse answers a request that got no process. A function in backoff
// (its start failed, or it keeps crashing) is answered with the reason and
// the request id, and the answer is logged with that id: what the process
// wrote is in the log, never in the answer.
func (h *Host) refuse(w http.ResponseWriter, f *function, id string, err error) {
	w.Header().Set("X-Request-Id", id)
	var fe *functions.Error
	if errors.Is(err, errBackoff) && errors.As(err, &fe) {
		h.opts.logger.Warn("request refused: the function cannot start", "function", f.name, "request_id", id, "reason", fe.Message)
		e := *fe
		e.Message = fmt.Sprintf("%s; its output is in cortex serve's log, under the function's failed start (request id %s)", fe.Message, id)
		err = &e
	}
	writeError(w, err)
}

// newRequestID is a random 128-bit id in hex, the runtime's format
// (runtime.NewRequestID; the host does not import the runtime).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type procKey struct{}

// proxied is a request on its way to a process.
type proxied struct {
	p     *process
	id    string        // its X-Request-Id
	limit time.Duration // its bound, from the moment p had it
	body  *callerBody   // nil without a body
}

// callerBody is the caller's request body as the proxy reads it. It keeps
// the first error reading it, so that proxyError can tell a body the caller
// cut short (or whose chunked encoding is broken, or that did not arrive
// in time) from a process that failed: http.Transport reports both as the
// round trip's error.
type callerBody struct {
	io.ReadCloser

	mu       sync.Mutex
	err      error
	complete bool // read to its end
}

func (b *callerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.mu.Lock()
		b.complete = true
		b.mu.Unlock()
	case err != nil && !errors.Is(err, http.ErrBodyReadAfterClose):
		// A read after Close is the transport giving up on a round trip
		// that failed for another reason.
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

// readErr is why reading the caller's body failed, or nil.
func (b *callerBody) readErr() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// incomplete reports whether there is a body and it has not all arrived.
func (b *callerBody) incomplete() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.complete
}

// servePageShell answers a read of a function's page shell (its page,
// script and style: adapters/http's PageShell) from the front's own copy
// and reports true; path is the request's path on the function. The shell
// holds nothing of the function's and is the same in every function this
// CLI builds (they are built with the SDK it embeds), so opening a page
// wakes no function at zero, and nobody without cortex serve's token can
// start one through it. The page's own calls (openapi.json, predict) go
// to the function.
func (h *Host) servePageShell(w http.ResponseWriter, r *http.Request, path string) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if !httpadapter.PagePath(path) {
		return false
	}
	shell := r.Clone(r.Context())
	shell.URL.Path, shell.URL.RawPath = path, ""
	httpadapter.ServePage(w, shell)
	return true
}

// statusWriter remembers the status of the answer, for the host's
// per-function request counts.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code // 1xx before the answer are passed on, not counted
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (ReverseProxy's flushes, and the
// hijack of a protocol switch) reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the status to count: what was written; 499 (nginx's "client
// closed request", as the function's runtime counts it) when nothing was
// because the caller went away; else 200, which the server sends for a
// handler that wrote nothing.
func (w *statusWriter) code(r *http.Request) int {
	switch {
	case w.status != 0:
		return w.status
	case r.Context().Err() != nil:
		return 499
	}
	return http.StatusOK
}

// copyBuffers reuses the proxy's 32 KiB copy buffers: without a pool
// ReverseProxy allocates one per request.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }

func rewrite(pr *httputil.ProxyRequest) {
	px := pr.In.Context().Value(procKey{}).(*proxied)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = px.p.Addr()
	pr.Out.Host = "" // the process sees its own address
	pr.Out.Header.Set("X-Request-Id", px.id)
	pr.SetXForwarded()
}

// exitWait bounds how long proxyError waits for a process that failed a
// request to exit. A process that exits to be replaced closes its listener
// (the moment a request handed to it fails) and then gives connections
// that are still fresh a quarter of a second (the runtime's freshGrace)
// before it exits: the wait must outlast that, on a busy machine too, to
// tell its exit from a failure.
const exitWait = time.Second

// proxyError answers a request whose process failed under it: 502, with
// the exit status when the process died; 503 with Retry-After when the
// process exited to be replaced; 400 when it was the caller's body that
// failed; 408 when the body did not arrive within the request's bound, and
// 504 when the process did not answer within it.
func (h *Host) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	px := r.Context().Value(procKey{}).(*proxied)
	w.Header().Set("X-Request-Id", px.id)
	p := px.p
	berr := px.body.readErr()
	limited := errors.Is(context.Cause(r.Context()), errLimit)
	if errors.Is(berr, os.ErrDeadlineExceeded) || limited && px.body.incomplete() {
		// The caller's body trickles: it held a slot for as long as the
		// function's own limit allows a prediction, and no longer.
		h.opts.logger.Warn("request body too slow", "function", p.f.name, "request_id", px.id, "bound", px.limit.String())
		w.Header().Set("Connection", "close")
		writeError(w, &functions.Error{Status: http.StatusRequestTimeout,
			Message: fmt.Sprintf("the request body did not arrive within %s (the function's limits.timeout, %s, and %s more)", px.limit, p.spec.Timeout, h.opts.grace)})
		return
	}
	if berr != nil {
		// The body ended before its Content-Length, or its chunked
		// encoding broke: the function itself answers that 400, and so
		// does the host, before the check for a caller that went away: a
		// caller that closed its side for writing mid-body has a
		// cancelled context but still reads, and writing nothing would
		// have net/http send it an empty 200.
		writeError(w, &functions.Error{Status: http.StatusBadRequest, Message: "reading the request body: " + berr.Error()})
		return
	}
	if limited {
		h.opts.logger.Warn("process did not answer within the request's bound", "function", p.f.name, "pid", p.PID(), "request_id", px.id, "bound", px.limit.String())
		writeError(w, &functions.Error{Status: http.StatusGatewayTimeout,
			Message: fmt.Sprintf("function %q: process %d did not answer within %s (the function's limits.timeout, %s, and %s more)", p.f.name, p.PID(), px.limit, p.spec.Timeout, h.opts.grace)})
		return
	}
	if r.Context().Err() != nil {
		return // the caller went away
	}
	// A process that died takes a moment to be reaped; waiting briefly
	// gives the caller the exit status, and makes sure the dead process
	// is out of the routing table before the caller can retry.
	select {
	case <-p.exited:
	case <-time.After(exitWait):
	}
	if p.ExitedToBeReplaced() {
		// The runtime exits with ExitReplace after a drain: the
		// predictions it admitted have finished (unless its
		// shutdown_timeout cut them off), and it refused the others with
		// 503. A request that meets its exit (the host handed it over
		// before it learnt, at a probe or at the exit, that the process
		// was going) was not served: the caller may retry at once, and
		// the process is not at fault, so no 502.
		h.opts.logger.Info("request met a process exiting to be replaced", "function", p.f.name, "pid", p.PID(), "request_id", px.id, "err", err)
		writeError(w, &functions.Error{Status: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Message: fmt.Sprintf("function %q: process %d exited to be replaced (a prediction overran its deadline) before it answered the request; retry", p.f.name, p.PID())})
		return
	}
	msg := fmt.Sprintf("function %q: process %d failed while serving the request: %v", p.f.name, p.PID(), err)
	if reason := p.ExitReason(); reason != "" {
		msg = fmt.Sprintf("function %q: process %d %s while serving the request", p.f.name, p.PID(), reason)
	}
	h.opts.logger.Warn("proxy error", "function", p.f.name, "pid", p.PID(), "request_id", px.id, "err", err)
	writeError(w, &functions.Error{Status: http.StatusBadGateway, Message: msg})
}

// closeIdle closes the keep-alive connections to processes before one is
// told to stop. net/http's Server.Shutdown, which a function runs on
// SIGTERM, waits up to 5s for a connection that was opened but never
// carried a request (the transport dials ahead under bursts); closing them
// from this side lets the process exit as soon as its requests are done.
// The transport is shared, so the other processes' idle connections go
// too: re-dialling on loopback costs far less than a slow drain, and
// drains are rare.
func (h *Host) closeIdle() { h.transport.CloseIdleConnections() }

// route answers r: it forwards it to its function as the path the
// function should see, or serves one of the host's own routes.
func (h *Host) route(w http.ResponseWriter, r *http.Request) {
	if name, ok := hostFunction(r.Host); ok {
		if f := h.fns[name]; f != nil {
			if h.async != nil && h.async.serve(w, r, f, r.URL.Path, "") {
				return
			}
			h.serveFunction(w, r, f, r.URL.Path, r.URL.RawPath)
			return
		}
		writeError(w, &functions.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no function %q (Host: %s); functions: %s", name, r.Host, h.names())})
		return
	}
	switch r.URL.Path {
	case StatusPath:
		if allowRead(w, r) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			_, _ = w.Write(h.statusJSON())
		}
		return
	case "/metrics", "/-/metrics":
		if allowRead(w, r) {
			h.metrics.ServeHTTP(w, r)
		}
		return
	case EventsPath:
		if allowRead(w, r) {
			h.serveEvents(w, r)
		}
		return
	case "/":
		if allowRead(w, r) {
			serveAsset(w, r, "index.html")
		}
		return
	case frontJS, frontCSS:
		if allowRead(w, r) {
			serveAsset(w, r, strings.TrimPrefix(r.URL.Path, "/-/"))
		}
		return
	}
	name, rest, slash := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	f := h.fns[name]
	if f == nil {
		writeError(w, &functions.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no function %q; functions: %s (route /{function}/... or Host: {function}.localhost)", name, h.names())})
		return
	}
	if !slash && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// /{function} is the function's page, whose relative links need
		// the slash. Only a read is redirected: POST /{function} stays a
		// prediction (the function's POST /).
		u := "/" + name + "/"
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, u, http.StatusPermanentRedirect)
		return
	}
	path, rawPath := "/"+rest, ""
	if r.URL.RawPath != "" {
		// Keep escaped slashes and the like as the caller sent them.
		_, rawRest, _ := strings.Cut(strings.TrimPrefix(r.URL.RawPath, "/"), "/")
		rawPath = "/" + rawRest
	}
	if h.async != nil && h.async.serve(w, r, f, path, "/"+name) {
		return
	}
	h.serveFunction(w, r, f, path, rawPath)
}

// hostFunction returns the function a Host header of the form
// {function}.localhost names.
func hostFunction(hostHeader string) (string, bool) {
	if hh, _, err := net.SplitHostPort(hostHeader); err == nil {
		hostHeader = hh
	}
	return strings.CutSuffix(strings.ToLower(hostHeader), ".localhost")
}

func (h *Host) names() string {
	names := make([]string, len(h.order))
	for i, f := range h.order {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

func allowRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, &functions.Error{Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " not allowed"})
	return false
}

func writeError(w http.ResponseWriter, err error) {
	status, msg := http.StatusInternalServerError, err.Error()
	var fe *functions.Error
	if errors.As(err, &fe) {
		status, msg = fe.Status, fe.Message
		if fe.RetryAfter > 0 {
			secs := int((fe.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(functions.ErrorBody(msg))
}

// Status reports every function, in the order given to New.
func (h *Host) Status() []FunctionStatus {
	out := make([]FunctionStatus, len(h.order))
	for i, f := range h.order {
		out[i] = f.status()
	}
	return out
}

// States of a function in FunctionStatus.State.
const (
	StateIdle     = "idle"     // no process: scaled to zero, or never called
	StateStarting = "starting" // a process is starting and none is ready
	StateReady    = "ready"    // at least one process takes requests
	StateFailed   = "failed"   // it cannot serve: FunctionStatus.Error says why
)

// FunctionStatus is a snapshot of one function.
type FunctionStatus struct {
	Name string `json:"name"`
	// State sums the function up: one of StateIdle, StateStarting,
	// StateReady or StateFailed.
	State string `json:"state"`
	// Error is why the function cannot serve while State is StateFailed:
	// its build error (Function.Err, BuildFailed), or why its latest start
	// failed or its processes keep crashing.
	Error string `json:"error,omitempty"`
	// Revision numbers the build that serves: 1 for the one given to New,
	// one more for each Replace.
	Revision int `json:"revision"`
	// BuildError is why the latest build (BuildFailed), or the start of
	// the replacement it made, failed while an earlier revision keeps
	// serving. A Replace clears it.
	BuildError string          `json:"build_error,omitempty"`
	Processes  []ProcessStatus `json:"processes"`
	// Ready, Starting and Draining count Processes by state.
	Ready    int `json:"ready"`
	Starting int `json:"starting"`
	Draining int `json:"draining"`
	// InFlight is the requests forwarded and not yet answered; Queued the
	// requests held by the host waiting for a process.
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// Requests counts the answers on the function's route (the front's
	// /{function}/, and its own socket while the host accepts there) by
	// HTTP status code: the process's, or the host's own (502, 503, ...);
	// 499 when the caller went away first. They are the host's
	// cortex_host_requests_total series, kept for the host's lifetime.
	// Errors is how many of them had a status of 400 or more.
	Requests map[int]int64 `json:"requests"`
	Errors   int64         `json:"errors"`
	// ColdStarts counts processes that started and became ready;
	// LastColdStart is how long the latest took, spawn to ready, and
	// LastColdStartAt when it became ready. Both stay while the function
	// is at zero processes.
	ColdStarts      int64         `json:"cold_starts"`
	LastColdStart   time.Duration `json:"-"`
	LastColdStartAt time.Time     `json:"last_cold_start_at,omitzero"`
	StartFailures   int64         `json:"start_failures"`
	Crashes         int64         `json:"crashes"`

	// LastColdStartPhases is the latest cold start inside its process,
	// by phase (runtime.Phases: fetch, load, init, first_prediction), as
	// the process logged them: first_prediction appears once its first
	// prediction is answered; none appear when the function's log level
	// is above info. JSON: last_cold_start_phases_seconds.
	LastColdStartPhases map[string]time.Duration `json:"-"`

	// Replaced counts processes that exited with status 75
	// (runtime.ExitReplace) to be replaced; they are not crashes.
	Replaced int64 `json:"replaced"`
	// ScaleUps counts processes started, ScaleDowns processes drained by
	// the autoscaler.
	ScaleUps   int64 `json:"scale_ups"`
	ScaleDowns int64 `json:"scale_downs"`
	// Listen is the function's own socket (Function.Listener), empty
	// without one; DirectRequests counts the requests its processes
	// answered there themselves, as they reported them.
	Listen         string `json:"listen,omitempty"`
	DirectRequests uint64 `json:"direct_requests,omitempty"`
	// LastError is why the latest start failed, while the function is in
	// backoff; RetryAt is when the next start may be tried.
	LastError string    `json:"last_error,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
}

// MarshalJSON writes LastColdStart as seconds.
func (s FunctionStatus) MarshalJSON() ([]byte, error) {
	type plain FunctionStatus
	return json.Marshal(struct {
		plain
		LastColdStart       float64            `json:"last_cold_start_seconds"`
		LastColdStartPhases map[string]float64 `json:"last_cold_start_phases_seconds,omitempty"`
	}{plain(s), s.LastColdStart.Seconds(), phaseSeconds(s.LastColdStartPhases)})
}

// UnmarshalJSON reads what MarshalJSON writes, LastColdStart included.
func (s *FunctionStatus) UnmarshalJSON(b []byte) error {
	type plain FunctionStatus
	v := struct {
		*plain
		LastColdStart       float64            `json:"last_cold_start_seconds"`
		LastColdStartPhases map[string]float64 `json:"last_cold_start_phases_seconds"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.LastColdStart = time.Duration(v.LastColdStart * float64(time.Second))
	s.LastColdStartPhases = phaseDurations(v.LastColdStartPhases)
	return nil
}

// ProcessStatus is a snapshot of one process.
type ProcessStatus struct {
	PID      int       `json:"pid"`
	Addr     string    `json:"addr"`
	State    string    `json:"state"`     // starting, ready or draining
	Revision int       `json:"revision"`  // the function's revision it runs
	InFlight int       `json:"in_flight"` // forwarded by the host, and reported by the process, whichever is more
	Started  time.Time `json:"started"`
}

// ErrShuttingDown is the error of requests that arrive, or were waiting,
// when Shutdown began.
var ErrShuttingDown = errors.New("host: shutting down")

// Shutdown stops the host: requests still waiting for a process get 503,
// new ones too; every process gets SIGTERM (so it finishes its in-flight
// requests and exits, as in Knative); when ctx ends first, the processes
// still running are killed with their whole process group. It returns once
// every process has exited, with ctx's error if any had to be killed.
// Calling it again waits again.
func (h *Host) Shutdown(ctx context.Context) error {
	var procs []*process
	h.shutdownOnce.Do(func() {
		if h.async != nil {
			h.async.stop() // what is queued stays on disk for the next start
		}
		h.CloseStreams()
		for _, f := range h.order {
			f.close()
		}
	})
	for _, f := range h.order {
		procs = append(procs, f.allProcs()...)
	}
	var err error
	for _, p := range procs {
		select {
		case <-p.exited:
			continue
		case <-ctx.Done():
		}
		err = fmt.Errorf("host: shutdown: processes still running at the bound were killed: %w", ctx.Err())
		break
	}
	if err != nil {
		for _, p := range procs {
			p.Kill("")
		}
		for _, p := range procs {
			<-p.exited // Wait returns soon after SIGKILL: WaitDelay bounds the pipes
		}
	}
	h.transport.CloseIdleConnections()
	if h.async != nil {
		h.asyncOnce.Do(func() {
			if cerr := h.async.close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		})
	}
	return err
}

var _ http.Handler = (*Host)(nil)
