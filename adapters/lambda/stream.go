package lambda

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// streamable reports whether a function-URL request is to be answered as a
// stream: the function URL is in RESPONSE_STREAM mode, the engine streams,
// and the caller asked (see adapters.WantsStream).
func (h *handler) streamable(s shape, req *functions.Request, bodyErr error) (adapters.StreamEngine, bool, bool) {
	if !h.o.stream || s != shapeURL || bodyErr != nil || req.Method != http.MethodPost || adapters.ServiceRoute(req.Path) {
		return nil, false, false
	}
	se, ok := h.e.(adapters.StreamEngine)
	if !ok {
		return nil, false, false
	}
	adapters.Route(req) // any other path is the function's own route, as in serve
	stream, sse := adapters.WantsStream(req.Header, req.Body)
	return se, stream, sse
}

// stream answers a function URL in RESPONSE_STREAM mode with the
// prediction's chunks as the predictor sends them: as server-sent events
// when sse, else the chunks themselves. The result is handed to
// aws-lambda-go as soon as the stream opens, and the prediction goes on
// writing into it (the Runtime API's streaming protocol posts the body as
// it comes); cancel, the invocation's, is called when the stream ends. An
// answer that was not streamed goes back as encodeHTTP encodes it (a 2xx
// as one event when sse). A chunked stream that fails midway ends with an
// error the Runtime API reports in its trailers (Lambda then cuts the
// caller's response short), since the status has gone.
func (h *handler) stream(ctx context.Context, cancel context.CancelFunc, ev *event, req *functions.Request, se adapters.StreamEngine, sse bool) (io.Reader, error) {
	pr, pw := io.Pipe()
	sink := &writerSink{w: pw, sse: sse, req: req, opened: make(chan http.Header, 1), extra: ev.answerHeader}
	type outcome struct {
		resp *functions.Response
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		defer cancel()
		resp, err := h.callStream(ctx, req, se, sink)
		if sink.wasOpened() {
			pw.CloseWithError(sink.end(err))
			return
		}
		done <- outcome{resp, err}
	}()
	select {
	case hdr := <-sink.opened:
		out := &events.LambdaFunctionURLStreamingResponse{StatusCode: http.StatusOK, Body: pr}
		out.Headers, out.Cookies = v2Headers(hdr)
		return out, nil
	case o := <-done:
		resp, err := o.resp, o.err
		if err != nil {
			resp = adapters.ErrorResponse(err, req.ID)
		}
		if sse && resp.StatusCode() < 300 {
			resp = eventsResponse(adapters.AppendEndEvent(adapters.AppendChunkEvent(nil, resp.Body), nil))
		}
		return encodeHTTP(shapeURL, ev, resp, req.ID, true)
	}
}

// callStream is InvokeStream with call's second line against a panic.
func (h *handler) callStream(ctx context.Context, req *functions.Request, se adapters.StreamEngine, sink adapters.StreamSink) (resp *functions.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, &functions.Error{Status: http.StatusInternalServerError,
				Message: "internal error (request id " + req.ID + ")", Err: fmt.Errorf("engine panicked: %v", v)}
		}
	}()
	resp, err = se.InvokeStream(ctx, req, sink)
	if err == nil && resp == nil && !sink.(*writerSink).wasOpened() {
		resp = &functions.Response{Status: http.StatusNoContent}
	}
	return resp, err
}

// writerSink writes a streamed prediction to w: the pipe aws-lambda-go
// reads a streamed invocation's result from, or a buffer that becomes a
// buffered one's body (collectSSE).
type writerSink struct {
	w      io.Writer
	sse    bool
	raw    bool // the predictor writes its own events
	req    *functions.Request
	opened chan http.Header // when not nil, gets the header once, when the stream opens
	extra  http.Header      // the gate's headers (see WithGate)
	mu     sync.Mutex
	isOpen bool
	buf    []byte
}

func (s *writerSink) Open(header http.Header) error {
	h := http.Header{}
	s.raw = adapters.StreamHeader(h, header, s.sse)
	h.Set("X-Request-Id", s.req.ID)
	addHeaders(h, s.extra)
	s.mu.Lock()
	s.isOpen = true
	s.mu.Unlock()
	if s.opened != nil {
		s.opened <- h
	}
	return nil
}

func (s *writerSink) wasOpened() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isOpen
}

// Send writes one chunk. To a pipe, it waits until aws-lambda-go has read
// it (an io.Pipe holds nothing), and fails once the result's reader is
// closed.
func (s *writerSink) Send(chunk []byte) error {
	if !s.sse || s.raw {
		_, err := s.w.Write(chunk)
		return err
	}
	s.buf = adapters.AppendChunkEvent(s.buf[:0], chunk)
	_, err := s.w.Write(s.buf)
	return err
}

// end writes the stream's last event, and returns the error a pipe
// closes with: nil, or, for a chunked stream that failed, the error, so
// that the result's reader fails.
func (s *writerSink) end(err error) error {
	if !s.sse {
		if err != nil {
			return fmt.Errorf("the prediction failed after it began streaming: %w", err)
		}
		return nil
	}
	if !s.raw || err != nil {
		_, _ = s.w.Write(adapters.AppendEndEvent(nil, err))
	}
	return nil
}

// bufferedSSE reports whether an HTTP event that cannot stream (a function
// URL in BUFFERED mode, API Gateway, an ALB) asks for server-sent events:
// it gets them all at once, in one body, as a client of the HTTP carrier
// would receive them over time, so that every carrier answers the same
// request alike.
func (h *handler) bufferedSSE(s shape, req *functions.Request, bodyErr error) (adapters.StreamEngine, bool) {
	if s == shapeDirect || bodyErr != nil || req.Method != http.MethodPost || adapters.ServiceRoute(req.Path) {
		return nil, false
	}
	se, ok := h.e.(adapters.StreamEngine)
	if !ok {
		return nil, false
	}
	adapters.Route(req)
	stream, sse := adapters.WantsStream(req.Header, req.Body)
	return se, stream && sse
}

// collectSSE answers such an event: the stream's events in one body.
func (h *handler) collectSSE(ctx context.Context, s shape, ev *event, req *functions.Request, se adapters.StreamEngine) (io.Reader, error) {
	var body bytes.Buffer
	sink := &writerSink{w: &body, sse: true, req: req}
	resp, err := h.callStream(ctx, req, se, sink)
	switch {
	case sink.wasOpened():
		_ = sink.end(err) // with sse, an error is an event
		resp, err = eventsResponse(body.Bytes()), nil
	case err == nil && resp.StatusCode() < 300:
		resp = eventsResponse(adapters.AppendEndEvent(adapters.AppendChunkEvent(nil, resp.Body), nil))
	case err != nil:
		resp = adapters.ErrorResponse(err, req.ID)
	}
	return encodeHTTP(s, ev, resp, req.ID, false)
}

// eventsResponse is a 200 whose body is server-sent events.
func eventsResponse(body []byte) *functions.Response {
	resp := &functions.Response{Status: http.StatusOK, Header: http.Header{}, Body: body}
	adapters.SSEHeader(resp.Header)
	return resp
}
