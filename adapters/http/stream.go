package http

import (
	"net/http"

	"github.com/klauspost/compress/gzhttp"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// stream answers a prediction whose caller asked for a stream (see
// adapters.WantsStream). With sse, the answer is text/event-stream: one
// "output" event per chunk, then "done", or "error" when the prediction
// fails midway (its deadline passed, the predictor failed). Without, the
// chunks themselves go out as a chunked body, each flushed as it comes; a
// failure midway aborts the body, so the caller sees it incomplete rather
// than whole. An answer that was not streamed (the predictor does not
// stream, or failed before its first chunk) goes out as usual, or as one
// event when it is a 2xx and sse was asked for.
//
// Nothing buffers a chunk: the compression middleware is told to leave
// the answer alone, and every write is flushed.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, req *functions.Request, se adapters.StreamEngine, sse bool) {
	sink := &httpSink{w: w, rc: http.NewResponseController(w), sse: sse, req: req}
	resp, err := se.InvokeStream(r.Context(), req, sink)
	if sink.opened {
		sink.end(err)
		return
	}
	if err != nil {
		resp = adapters.ErrorResponse(err, req.ID)
	} else {
		setRequestID(resp, req.ID)
	}
	if !sse || resp.StatusCode() >= 300 {
		writeResponse(w, resp)
		return
	}
	if sink.Open(resp.Header) == nil && sink.Send(resp.Body) == nil {
		sink.end(nil)
	}
}

// httpSink writes a streamed prediction to an HTTP response.
type httpSink struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	sse    bool
	raw    bool               // the predictor writes its own events
	req    *functions.Request // its ID is the engine's by the time it opens
	opened bool
	buf    []byte
}

func (s *httpSink) Open(header http.Header) error {
	s.opened = true
	dst := s.w.Header()
	dst.Set("X-Request-Id", s.req.ID)
	dst.Set(gzhttp.HeaderNoCompression, "1") // gzhttp removes it
	s.raw = adapters.StreamHeader(dst, header, s.sse)
	s.w.WriteHeader(http.StatusOK)
	return s.rc.Flush()
}

// Send writes one chunk: as one event (see adapters.AppendChunkEvent), or
// as it is.
func (s *httpSink) Send(chunk []byte) error {
	if !s.sse || s.raw {
		if _, err := s.w.Write(chunk); err != nil {
			return err
		}
		return s.rc.Flush()
	}
	s.buf = adapters.AppendChunkEvent(s.buf[:0], chunk)
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	return s.rc.Flush()
}

// end closes the stream: "done", or "error" with the error's status and
// message (an aborted body without sse).
func (s *httpSink) end(err error) {
	if !s.sse {
		if err != nil {
			// The status has gone; an incomplete chunked body is how
			// HTTP says the answer is not whole.
			panic(http.ErrAbortHandler)
		}
		return
	}
	if s.raw && err == nil {
		return // its own events said it was done
	}
	s.buf = adapters.AppendEndEvent(s.buf[:0], err)
	if _, err := s.w.Write(s.buf); err == nil {
		_ = s.rc.Flush()
	}
}
