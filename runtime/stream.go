package runtime

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// InvokeStream runs one prediction for a caller that asked for a stream
// (see adapters.StreamEngine) and counts its answer in
// cortex_requests_total: a stream that opened counts as its 200, or as
// the status of the error that ended it.
//
// A predictor that implements functions.Streamer streams on the
// function's own route (POST /predict): under the same limits as Invoke
// (the body limit, admission, the deadline, a concurrency slot held until
// the predictor returns, panic recovery). Its pre stage runs once on the
// request, its post stage on each chunk (a stage maps bytes to bytes, and
// a chunk is bytes). Batching does not gather streamed requests: each
// runs on its own, as the batch's members could not stream their parts.
// The OIP and KServe V1 routes, and predictors that do not stream, answer
// as Invoke does.
func (r *Runtime) InvokeStream(ctx context.Context, req *functions.Request, sink adapters.StreamSink) (*functions.Response, error) {
	resp, err, opened := r.answerStream(ctx, req, sink)
	status := statusOf(resp, err)
	if opened && err == nil {
		status = http.StatusOK
	}
	r.m.countStatus(status)
	return resp, err
}

// InvokeStream is answerStream: the handler counts what it sends.
func (e countedEngine) InvokeStream(ctx context.Context, req *functions.Request, sink adapters.StreamSink) (*functions.Response, error) {
	resp, err, _ := e.answerStream(ctx, req, sink)
	return resp, err
}

func (r *Runtime) answerStream(ctx context.Context, req *functions.Request, sink adapters.StreamSink) (*functions.Response, error, bool) {
	sp, ok := r.p.(functions.Streamer)
	if !ok || req.Protocol != functions.ProtocolRaw {
		resp, err := r.answer(ctx, req)
		return resp, err, false
	}
	start := time.Now()
	if req.ID == "" {
		req.ID = NewRequestID()
	}
	g := &guardedSink{sink: sink}
	var resp *functions.Response
	err := r.starting(req.ID)
	if err == nil {
		err = r.route(req)
	}
	if err == nil {
		resp, err = r.invoke(ctx, req, func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			if err := r.stages.preprocess(ctx, req); err != nil {
				return nil, err
			}
			s := &stream{ctx: ctx, g: g, header: http.Header{}, post: r.stages}
			if err := sp.PredictStream(ctx, req, s); err != nil {
				return nil, err
			}
			// A stream with no chunk is still a stream: it opens, empty.
			return nil, g.open(s.header)
		})
	}
	opened, gone := g.stop()
	r.m.latency.Observe(time.Since(start).Seconds())
	if opened {
		if gone && functions.StatusOf(err) == 499 && !errors.Is(err, context.Canceled) {
			// The stream stopped being read before the request's context
			// said so (a write to the caller failed first).
			r.m.cancelled.Inc()
		}
		return nil, err, true
	}
	return resp, err, false
}

// errStreamClosed is a Send's error once the prediction's answer has
// gone: its deadline passed, or its caller left.
var errStreamClosed = errors.New("runtime: the stream has ended: the caller left or the deadline passed")

// errCallerGone is a Send's error when the chunk could not be written to
// the caller: it left. A predictor that returns it (or wraps it) ends as
// a cancelled prediction, 499, not as a failure of its own.
var errCallerGone = &functions.Error{Status: 499, Message: "client closed the request: the stream could not be written"}

// guardedSink passes a predictor's chunks to the carrier's sink until the
// invocation returns: a predictor that runs on past its deadline or its
// caller (its worker outlives invoke) must not write to a connection the
// carrier has finished with.
type guardedSink struct {
	mu      sync.Mutex
	sink    adapters.StreamSink
	opened  bool
	stopped bool
	gone    bool // a write to the caller failed
}

func (g *guardedSink) open(h http.Header) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.openLocked(h)
}

func (g *guardedSink) openLocked(h http.Header) error {
	if g.stopped {
		return errStreamClosed
	}
	if g.opened {
		return nil
	}
	g.opened = true
	return g.sink.Open(h)
}

func (g *guardedSink) send(h http.Header, chunk []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone {
		return errCallerGone
	}
	if err := g.openLocked(h); err != nil {
		if err != errStreamClosed {
			g.gone = true
			return errCallerGone
		}
		return err
	}
	if err := g.sink.Send(chunk); err != nil {
		g.gone = true
		return errCallerGone
	}
	return nil
}

// stop ends the sink's use (waiting for a Send under way) and reports
// whether it was opened, and whether a write to the caller failed.
func (g *guardedSink) stop() (opened, gone bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	return g.opened, g.gone
}

// stream is the functions.Stream a predictor sends to.
type stream struct {
	ctx    context.Context
	g      *guardedSink
	header http.Header
	post   *stages
}

func (s *stream) Header() http.Header { return s.header }

func (s *stream) Send(chunk []byte) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if s.post != nil && s.post.post != nil {
		out, err := s.post.postChunk(s.ctx, chunk)
		if err != nil {
			return err
		}
		chunk = out
	}
	return s.g.send(s.header, chunk)
}

// ServesRoute implements adapters.RouteServer: path is one of the POST
// routes the predictor serves besides /predict (functions.Router).
func (r *Runtime) ServesRoute(path string) bool {
	rt, ok := r.p.(functions.Router)
	return ok && slices.Contains(rt.Routes(), path)
}
