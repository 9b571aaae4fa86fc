package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/adapters/knative"
	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/activation"
)

// Main serves p and exits the process when serving ends: the entry point a
// generated main calls, and that a user who writes their own main calls.
// It reads the function's Config from the JSON file named by $CORTEX_CONFIG,
// else from the cortex.json the packager ships beside the executable (or in
// $LAMBDA_TASK_ROOT), else serves with the defaults. It picks the carrier
// from the environment: the Lambda runtime loop when $AWS_LAMBDA_RUNTIME_API
// is set, otherwise an HTTP server on $PORT (default 8080, Knative's
// container contract) that also takes CloudEvents. Started by cortex serve
// for a function with a port of its own, it also accepts on the socket it
// inherits, once ready, and reports its load (see package activation).
//
// The exit status is 0 after a drain on SIGTERM, ExitReplace (75) when a
// prediction overran its deadline by limits.overrun_grace and the process
// must be replaced, and 1 for any other error (Init failed, the port is
// taken).
func Main(p functions.Predictor, opts ...Option) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := Run(ctx, p, opts...); err != nil {
		fmt.Fprintln(os.Stderr, "cortex:", err)
		stop()
		if errors.Is(err, ErrReplace) {
			os.Exit(ExitReplace)
		}
		os.Exit(1)
	}
}

// Run is Main without the process exit: it serves p until ctx ends, then
// drains. It returns the error that stopped serving, if any: one that
// wraps ErrReplace when the process must be replaced. It keeps the garbage
// collector's heap goal at a floor for the rest of the process, unless
// GOGC or GOMEMLIMIT is set (see gcfloor.go).
func Run(ctx context.Context, p functions.Predictor, opts ...Option) error {
	startGCFloor()
	cfg, err := configFromEnv()
	if err != nil {
		return err
	}
	// A function that requires a token it was not given fails here, before
	// it serves, naming the variable; Lambda is told as for an Init error.
	if err := checkAuth(cfg); err != nil {
		err = fmt.Errorf("function %q: %w", cfg.Name, err)
		if os.Getenv(lambda.EnvRuntimeAPI) != "" {
			if rerr := lambda.ReportInitError(err); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return err
	}
	// Under cortex serve, a shared socket to accept on once ready, and the
	// host's control channel (see package activation).
	in, err := activation.Inherit()
	if err != nil {
		return err
	}
	rt, err := New(p, *cfg, opts...)
	if err != nil {
		return err
	}
	// The process is the function's: what predictors log through slog's
	// default logger goes out as the runtime's JSON, labelled alike.
	slog.SetDefault(rt.Logger())
	if os.Getenv(lambda.EnvRuntimeAPI) != "" {
		return rt.ServeLambda(ctx)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	addr := net.JoinHostPort(os.Getenv("CORTEX_HOST"), port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return rt.serveOn(ctx, ln, in)
}

// ServeLambda initialises the predictor and runs the Lambda runtime loop
// until the process ends. An Init error is reported to the Runtime API's
// init error endpoint, as Lambda expects, and returned. The loop never
// returns, so a process that must be replaced (see ExitReplace) exits
// from here, with ExitReplace, once its invocation in flight is answered.
func (r *Runtime) ServeLambda(ctx context.Context) error {
	if err := r.Start(ctx); err != nil {
		if rerr := lambda.ReportInitError(err); rerr != nil {
			r.log.Error("reporting the init error to Lambda", "err", rerr)
		}
		return err
	}
	go r.exitOnReplace()
	return lambda.Start(r, r.lambdaOptions()...)
}

// lambdaOptions are the Lambda carrier's options for this function.
// Health, readiness, metrics and the OIP metadata routes answer over
// Lambda events as over HTTP: the same handler serves them, behind the
// same CORS policy and token check (the gate). The function URL's own
// CORS settings stay unset (cortex deploy sets none), so Lambda passes
// preflights on to the function, which answers them as over HTTP. The
// function's page is served there only when targets.lambda.pages asks.
func (r *Runtime) lambdaOptions() []lambda.Option {
	opts := []httpadapter.Option{httpadapter.WithoutCompression()}
	if !r.cfg.LambdaPages {
		opts = append(opts, httpadapter.WithoutPages())
	}
	routes := httpadapter.New(r, r.httpOptions(opts...)...)
	lopts := []lambda.Option{lambda.WithRoutes(routes), lambda.WithGate(r.gate(r.cfg.LambdaPages))}
	if r.cfg.LambdaPages {
		lopts = append(lopts, lambda.WithPages())
	}
	return lopts
}

// freshGrace is how long a draining server lets a fresh connection bring
// its request before closing it.
const freshGrace = 250 * time.Millisecond

// MaxHeaderBytes bounds a request's headers; larger ones are answered 431.
const MaxHeaderBytes = 64 << 10

// ServeHTTP listens on addr and serves the function over HTTP until ctx
// ends. The listener opens before Init runs, so /healthz answers while the
// model loads and /readyz turns 200 once it has loaded. When ctx ends it
// refuses new requests, lets the admitted ones finish within
// limits.shutdown_timeout, then closes the predictor. When the process
// must be replaced (see ExitReplace) it drains the same way and returns
// an error wrapping ErrReplace.
func (r *Runtime) ServeHTTP(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return r.serveOn(ctx, ln, nil)
}

// Handler is the function's HTTP handler, as Serve serves it: CloudEvents
// (Knative Eventing) first, everything else plain HTTP, with /metrics.
// Every answer it sends is counted in cortex_requests_total, the carriers'
// own refusals too (see countAnswers).
//
// With auth.* or cors.* in the config, the function's CORS policy and
// bearer-token check stand in front of all of it (see gate): a CloudEvent
// too must carry the token.
func (r *Runtime) Handler() http.Handler {
	e := countedEngine{r}
	return r.countAnswers(r.gate(true)(knative.Wrap(e, httpadapter.New(e, r.httpOptions()...))))
}

// httpOptions are the HTTP carrier's options for this function, and
// more.
func (r *Runtime) httpOptions(more ...httpadapter.Option) []httpadapter.Option {
	return append([]httpadapter.Option{httpadapter.WithMetrics(r.MetricsHandler()), httpadapter.WithVersion(version())}, more...)
}

// Serve is ServeHTTP on an open listener.
func (r *Runtime) Serve(ctx context.Context, ln net.Listener) error {
	return r.serveOn(ctx, ln, nil)
}

// server is an HTTP server of the function's, with its bounds.
func (r *Runtime) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: r.opts.readHeaderTimeout,
		// The body must arrive, and the answer leave, within the prediction
		// timeout plus a margin for slow links: no connection is held
		// forever by a client that stops reading or writing.
		ReadTimeout:    r.limits.Timeout.D() + 30*time.Second,
		WriteTimeout:   r.limits.Timeout.D() + 30*time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: MaxHeaderBytes,
	}
}

// serveOn serves on ln and, when in is not nil (the process was started by
// cortex serve with a shared socket), on in's socket too, once Init has
// succeeded: a connection there waits in the kernel's backlog until this
// process (or another) is ready for it, rather than get the 503 a model
// route answers while the model loads.
func (r *Runtime) serveOn(ctx context.Context, ln net.Listener, in *activation.Inherited) error {
	h := r.Handler()
	own := h
	var act *activated
	if in != nil {
		act = newActivated(in)
		if r.async != nil {
			act.background = &r.async.running
		}
		own = act.count(h, false)
	}
	srvs := &servers{fresh: &freshConns{conns: map[net.Conn]struct{}{}}}
	srv := srvs.add(r.server(own))
	r.log.Info("listening", "addr", ln.Addr().String())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	initErr := make(chan error, 1)
	go func() { initErr <- r.Start(ctx) }()

	select {
	case err := <-initErr:
		if err != nil {
			_ = srv.Close()
			return err
		}
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	var hostGone <-chan struct{}
	if act != nil && ctx.Err() == nil {
		shared := srvs.add(r.server(act.AllowedHosts.Handler(act.count(h, true))))
		r.log.Info("accepting on the shared socket", "addr", act.Listener.Addr().String())
		// Its error is the shared socket closing: at a quiesce or the drain.
		go func() { _ = shared.Serve(act.Listener) }()
		stop := make(chan struct{})
		defer close(stop)
		go act.report(stop)
		go act.control(shared)
		hostGone = act.hostGone
	}
	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	case <-hostGone:
		r.log.Warn("the control channel to cortex serve closed: draining")
	case <-r.replacing:
		return r.drainForReplace(srvs)
	}
	return r.drain(srvs)
}

// servers are a process's HTTP servers: on its own port and, under cortex
// serve with a shared socket, on that socket. They drain together.
type servers struct {
	all   []*http.Server
	fresh *freshConns
}

func (s *servers) add(srv *http.Server) *http.Server {
	s.fresh.track(srv)
	s.all = append(s.all, srv)
	return srv
}

// freshConns are the connections accepted but not yet carrying a request.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// track records srv's fresh connections. http.Server.Shutdown waits up
// to five seconds for a connection that was opened but never used, and
// proxies (Knative's queue-proxy, cortex serve) open spare ones: without
// this a drain would take five seconds for nothing.
func (f *freshConns) track(srv *http.Server) {
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if st == http.StateNew {
			f.conns[c] = struct{}{}
		} else {
			delete(f.conns, c)
		}
	}
}

// close closes the connections still fresh.
func (f *freshConns) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		_ = c.Close()
	}
}

// drain stops the server gracefully: readiness fails and new requests get
// 503 at once, the listener closes, in-flight requests finish within the
// bound, then the predictor closes.
func (r *Runtime) drain(srvs *servers) error {
	bound := r.limits.ShutdownTimeout.D()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	rtErr := make(chan error, 1)
	go func() { rtErr <- r.Shutdown(ctx) }()
	err := errors.Join(srvs.shutdown(ctx), <-rtErr)
	r.log.Info("stopped")
	return err
}

// shutdown closes the servers' listeners and waits, until ctx ends, for
// their connections to finish the requests they carry.
func (s *servers) shutdown(ctx context.Context) error {
	// A request already on its way over a fresh connection gets a moment to
	// arrive (and then a 503, the runtime is draining); after that, fresh
	// connections are closed so Shutdown need not wait for them.
	go func() {
		select {
		case <-time.After(freshGrace):
			s.fresh.close()
		case <-ctx.Done():
		}
	}()
	errs := make([]error, len(s.all))
	var wg sync.WaitGroup
	for i, srv := range s.all {
		wg.Go(func() {
			err := srv.Shutdown(ctx)
			if errors.Is(err, context.DeadlineExceeded) {
				_ = srv.Close()
			}
			if !errors.Is(err, net.ErrClosed) { // the shared socket, closed at a quiesce
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/cortexfn/cortex" {
				return d.Version
			}
		}
		if bi.Main.Path == "github.com/cortexfn/cortex" {
			return bi.Main.Version
		}
	}
	return "dev"
}
